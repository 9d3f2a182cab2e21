//! Black-box tests of the audit trail read back over HTTP: a user's own events, the
//! administrators' listing with each filter, cursor pages, errors in the native shape,
//! retention pruning, and never a secret — on both stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use llm_settings_domain::{AuditAction, AuditEvent, AuditOutcome, Owner, Timestamp, UserId};
use support::{assert_absent, eventually, on_both_stores, Backend, Service};

const MINE: &str = "/users/me/llm-settings/audit";
const ALL: &str = "/v1/audit";
const PLANTED: &str = "sk-proj-PLANTEDauditSECRET0123456789abcdef";

/// The events of a listing.
fn events(reply: &support::Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["events"].as_array().unwrap().clone()
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

fn at(event: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(event["at"].as_str().unwrap(), &Rfc3339).unwrap()
}

/// Alice, Bob, an admin of `acme` and a superadmin each change something; Alice also tests a
/// provider she has no key for (a failed test). Returns the tokens.
struct Cast {
    alice: String,
    bob: String,
    admin: String,
    root: String,
}

async fn act(svc: &Service) -> Cast {
    let cast = Cast {
        alice: svc.user("alice"),
        bob: svc.user("bob"),
        admin: svc.token("ada", "read write", &["admin"], Some("acme")),
        root: svc.token("root", "read write", &["superadmin"], None),
    };
    let key = |provider: &str| json!({"provider": provider, "api_key": PLANTED});
    let steps = [
        (&cast.alice, "POST", "/users/me/llm-settings", key("openai")),
        (
            &cast.alice,
            "PATCH",
            "/users/me/llm-settings/{id}",
            json!({"model": "gpt-4o"}),
        ),
        (
            &cast.bob,
            "POST",
            "/users/me/llm-settings",
            key("anthropic"),
        ),
        (
            &cast.admin,
            "POST",
            "/instances/acme/llm-settings",
            key("openai"),
        ),
        (&cast.root, "POST", "/global/llm-settings", key("anthropic")),
    ];
    let mut last_id = 0;
    for (token, method, path, body) in steps {
        let path = path.replace("{id}", &last_id.to_string());
        let r = svc.call(method, &path, token, Some(body)).await;
        assert!(r.status < 300, "{method} {path}: {}", r.text);
        last_id = r.body["id"].as_i64().unwrap_or(last_id);
    }
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings/test",
            &cast.alice,
            Some(json!({"provider": "anthropic"})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    cast
}

async fn users_read_their_own_events(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let cast = act(&svc).await;
    let mine = events(&svc.call("GET", MINE, &cast.alice, None).await);
    let actions: Vec<&str> = mine.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.first(), Some(&"test"), "newest first: {actions:?}");
    assert_eq!(actions.last(), Some(&"create"), "{actions:?}");
    assert!(actions.contains(&"update"), "{actions:?}");
    assert!(mine.iter().all(|e| e["owner"] == "user:alice"));
    assert_eq!(mine[0]["outcome"], "provider_not_configured");
    assert_eq!(mine[0]["provider"], "anthropic");
    let created = mine.last().unwrap();
    assert_eq!(created["outcome"], "success");
    assert!(created["config_id"].as_i64().is_some());
    let bobs = events(&svc.call("GET", MINE, &cast.bob, None).await);
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["actor"], "bob");

    let filtered = svc
        .call("GET", &format!("{MINE}?action=create"), &cast.alice, None)
        .await;
    assert_eq!(ids(&events(&filtered)), ids(&mine[mine.len() - 1..]));
    let no_read = svc.token("alice", "write", &[], None);
    let r = svc.call("GET", MINE, &no_read, None).await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (403, json!("forbidden"))
    );
    let r = svc.send("GET", MINE, None, None, &[]).await;
    assert_eq!(r.status, 401);
    let text = svc.call("GET", MINE, &cast.alice, None).await.text;
    assert_absent(PLANTED, text.as_bytes(), "a user's audit listing");
}

/// Each filter returns exactly the events of the full listing that match it.
async fn superadmins_filter_every_event(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let cast = act(&svc).await;
    let all = events(&svc.call("GET", ALL, &cast.root, None).await);
    assert!(all.len() >= 6, "{all:?}");
    assert!(ids(&all).windows(2).all(|w| w[0] > w[1]), "newest first");
    let middle = at(&all[all.len() / 2]);
    let since = middle.format(&Rfc3339).unwrap();
    type Pick = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(String, Pick)> = vec![
        (
            "owner=user:alice".into(),
            Box::new(|e| e["owner"] == "user:alice"),
        ),
        (
            "owner=instance:acme".into(),
            Box::new(|e| e["owner"] == "instance:acme"),
        ),
        ("owner=global".into(), Box::new(|e| e["owner"] == "global")),
        ("actor=bob".into(), Box::new(|e| e["actor"] == "bob")),
        (
            "action=create".into(),
            Box::new(|e| e["action"] == "create"),
        ),
        (
            "provider=anthropic".into(),
            Box::new(|e| e["provider"] == "anthropic"),
        ),
        (format!("since={since}"), Box::new(move |e| at(e) >= middle)),
        (format!("until={since}"), Box::new(move |e| at(e) < middle)),
        (
            "actor=alice&action=update&provider=openai".into(),
            Box::new(|e| {
                e["actor"] == "alice" && e["action"] == "update" && e["provider"] == "openai"
            }),
        ),
    ];
    for (query, pick) in cases {
        let got = events(
            &svc.call("GET", &format!("{ALL}?{query}"), &cast.root, None)
                .await,
        );
        let want: Vec<Value> = all.iter().filter(|e| pick(e)).cloned().collect();
        assert!(
            !want.is_empty() && want.len() < all.len(),
            "{query} narrows"
        );
        assert_eq!(ids(&got), ids(&want), "{query}");
    }
    let text = svc.call("GET", ALL, &cast.root, None).await.text;
    assert_absent(PLANTED, text.as_bytes(), "the audit listing");
}

/// An admin reads its instance's events, whatever it asks; a user or service may not list.
async fn admins_read_only_their_instance(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let cast = act(&svc).await;
    let theirs = events(&svc.call("GET", ALL, &cast.admin, None).await);
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        (&theirs[0]["owner"], &theirs[0]["actor"]),
        (&json!("instance:acme"), &json!("ada"))
    );
    for query in ["owner=user:alice", "owner=global", "actor=alice"] {
        let got = svc
            .call("GET", &format!("{ALL}?{query}"), &cast.admin, None)
            .await;
        assert_eq!(events(&got), Vec::<Value>::new(), "{query}");
    }
    let other = svc.token("otto", "read", &["admin"], Some("other"));
    assert_eq!(events(&svc.call("GET", ALL, &other, None).await).len(), 0);
    let no_instance = svc.token("ada", "read", &["admin"], None);
    let service = svc.token("app", "", &["service"], None);
    for token in [&cast.alice, &no_instance, &service] {
        let r = svc.call("GET", ALL, token, None).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.body["error_code"], "forbidden");
    }
}

/// Pages of a cursor walk every event once, newest first; the last page says so.
async fn pages_walk_every_event_once(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let me = svc.user("pager");
    let root = svc.token("root", "read", &["superadmin"], None);
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings",
            &me,
            Some(json!({"provider": "openai", "api_key": PLANTED})),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    for model in ["m1", "m2", "m3", "m4", "m5", "m6"] {
        let path = format!("/users/me/llm-settings/{id}");
        let r = svc
            .call("PATCH", &path, &me, Some(json!({"model": model})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for (base, token) in [
        (format!("{MINE}?limit=3"), &me),
        (format!("{ALL}?owner=user:pager&limit=3"), &root),
    ] {
        let everything = events(&svc.call("GET", MINE, &me, None).await);
        assert!(everything.len() >= 7, "a create and six updates");
        let expected: Vec<usize> = everything.chunks(3).map(<[Value]>::len).collect();
        let (mut seen, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let path = match &cursor {
                Some(c) => format!("{base}&cursor={c}"),
                None => base.clone(),
            };
            let r = svc.call("GET", &path, token, None).await;
            let page = events(&r);
            sizes.push(page.len());
            seen.extend(ids(&page));
            match r.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(sizes, expected, "{base}");
        assert_eq!(seen, ids(&everything), "no duplicate, no gap: {base}");
    }
    let count = events(&svc.call("GET", MINE, &me, None).await).len();
    let exact = svc
        .call("GET", &format!("{MINE}?limit={count}"), &me, None)
        .await;
    assert_eq!(events(&exact).len(), count);
    assert_eq!(exact.body["next_cursor"], Value::Null, "a full last page");
}

/// Bad filters, limits and cursors are 400s in the native shape naming the parameter.
async fn bad_queries_are_named_400s(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let root = svc.token("root", "read", &["superadmin"], None);
    let me = svc.user("asker");
    let cases = [
        (ALL, "cursor=not-a-cursor", Some("cursor")),
        (ALL, "cursor=YmVmb3JlOi0x", Some("cursor")),
        (MINE, "cursor=%00%ff", Some("cursor")),
        (ALL, "limit=0", Some("limit")),
        (ALL, "limit=501", Some("limit")),
        (MINE, "limit=ten", Some("limit")),
        (ALL, "action=explode", Some("action")),
        (ALL, "owner=team:x", Some("owner")),
        (ALL, "owner=user:", Some("owner")),
        (ALL, "provider=nope", Some("provider")),
        (MINE, "since=yesterday", Some("since")),
        (ALL, "until=2025-02-30T00:00:00Z", Some("until")),
        (
            ALL,
            "since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z",
            Some("since"),
        ),
        (MINE, "owner=user:asker", None),
        (ALL, "limit=1&limit=2", None),
        (ALL, "surprise=1", None),
    ];
    for (path, query, field) in cases {
        let token = if path == ALL { &root } else { &me };
        let r = svc
            .call("GET", &format!("{path}?{query}"), token, None)
            .await;
        assert_eq!(r.status, 400, "{path}?{query}: {}", r.text);
        assert_eq!(r.body["error_code"], "validation_error", "{query}");
        assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if let Some(field) = field {
            assert_eq!(r.body["field"], field, "{query}");
        }
    }
    let r = svc
        .call(
            "GET",
            &format!("{ALL}?since=2025-01-05T10:00:00+01:00"),
            &root,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "an unencoded `+` of an offset: {}", r.text);
}

/// Events older than the retention are pruned at start; newer ones stay.
async fn retention_prunes_old_events(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let me = svc.user("keeper");
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings",
            &me,
            Some(json!({"provider": "openai", "api_key": PLANTED})),
        )
        .await;
    assert_eq!(r.status, 201);
    let store = svc.open_store().await;
    let days_ago = |days: i64| {
        let at = Timestamp::new(OffsetDateTime::now_utc() - time::Duration::days(days));
        let owner = Owner::User(UserId::parse("keeper").unwrap());
        AuditEvent::new(
            "keeper",
            owner,
            AuditAction::Update,
            AuditOutcome::Success,
            at,
        )
    };
    store
        .record_many(vec![
            days_ago(400),
            days_ago(45),
            days_ago(31),
            days_ago(10),
        ])
        .await
        .unwrap();
    drop(store);
    let svc = svc
        .restart(&[("LLM_SETTINGS_AUDIT_RETENTION_DAYS", "30")])
        .await
        .unwrap();
    let me = svc.user("keeper");
    let cut = OffsetDateTime::now_utc() - time::Duration::days(30);
    let left = eventually("old events pruned", Duration::from_secs(30), || async {
        let all = events(&svc.call("GET", MINE, &me, None).await);
        all.iter().all(|e| at(e) > cut).then_some(all)
    })
    .await;
    let inserted: Vec<&Value> = left.iter().filter(|e| e["action"] == "update").collect();
    assert_eq!(
        inserted.len(),
        1,
        "only the 10-day-old event stays: {left:?}"
    );
    assert!(at(inserted[0]) < OffsetDateTime::now_utc() - time::Duration::days(9));
    assert!(
        left.iter().any(|e| e["action"] == "create"),
        "today's event stays"
    );
    svc.logged("old audit events pruned").await;
}

on_both_stores!(
    users_read_their_own_events,
    superadmins_filter_every_event,
    admins_read_only_their_instance,
    pages_walk_every_event_once,
    bad_queries_are_named_400s,
    retention_prunes_old_events,
);
