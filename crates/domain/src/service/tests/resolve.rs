//! The resolution rule: every branch over mocked ports, and properties of the pure rule.

use proptest::prelude::*;

use super::*;
use crate::chain::{ChainQuery, ChainSnapshot};
use crate::owner::OwnerKind;
use crate::service::{choose, ResolveRequest};

fn instance(id: &str) -> Owner {
    Owner::Instance(InstanceId::parse(id).unwrap())
}

fn service_actor() -> Actor {
    Actor::new(UserId::parse("billing").unwrap(), [], [Role::Service], None)
}

fn for_user(user_id: &str, instance_id: Option<&str>) -> ResolveRequest {
    ResolveRequest {
        user: Some(UserId::parse(user_id).unwrap()),
        instance: instance_id.map(|i| InstanceId::parse(i).unwrap()),
        ..ResolveRequest::default()
    }
}

fn default_of(mut c: ProviderConfig) -> ProviderConfig {
    c.is_default = true;
    c
}

fn disabled(mut c: ProviderConfig) -> ProviderConfig {
    c.enabled = false;
    c
}

fn with_model(mut c: ProviderConfig, model: &str) -> ProviderConfig {
    c.model = Some(ModelName::parse(model).unwrap());
    c
}

/// The chain alice → acme → global with a key at each level.
fn three_levels() -> Vec<ProviderConfig> {
    vec![
        default_of(config(
            1,
            &user("alice"),
            "openai",
            Some("sk-user-0123456789abcdefghij"),
        )),
        default_of(config(2, &instance("acme"), "anthropic", Some(STORED))),
        config(
            3,
            &instance("acme"),
            "openai",
            Some("sk-inst-0123456789abcdefghij"),
        ),
        default_of(config(
            4,
            &Owner::Global,
            "openai",
            Some("sk-glob-0123456789abcdefghij"),
        )),
        config(
            5,
            &Owner::Global,
            "gemini",
            Some("AIza-glob-0123456789abcdefgh"),
        ),
    ]
}

fn snapshot(
    configs: Vec<ProviderConfig>,
    assignments: Vec<(Owner, TaskAssignment)>,
) -> ChainSnapshot {
    ChainSnapshot {
        configs: configs.into_iter().filter(|c| c.enabled).collect(),
        assignments,
    }
}

fn pick(
    snap: &ChainSnapshot,
    request: &ResolveRequest,
) -> Result<(Owner, ProviderId, Option<String>)> {
    let chain = request.chain()?;
    choose(&chain, snap, request).map(|r| (r.source.owner, r.provider, r.model))
}

#[test]
fn the_users_key_wins_then_the_instances_then_the_global_one() {
    let snap = snapshot(three_levels(), vec![]);
    let mut request = for_user("alice", Some("acme"));
    request.provider = Some(provider("openai"));
    assert_eq!(pick(&snap, &request).unwrap().0, user("alice"));
    request.user = Some(UserId::parse("bob").unwrap());
    assert_eq!(pick(&snap, &request).unwrap().0, instance("acme"));
    request.instance = None;
    assert_eq!(pick(&snap, &request).unwrap().0, Owner::Global);
    request.provider = Some(provider("gemini"));
    assert_eq!(pick(&snap, &request).unwrap().0, Owner::Global);
}

#[test]
fn without_task_or_provider_the_first_default_names_the_provider() {
    let snap = snapshot(three_levels(), vec![]);
    // alice's default is openai (her own key); bob has none: acme's default is anthropic.
    let (owner, p, _) = pick(&snap, &for_user("alice", Some("acme"))).unwrap();
    assert_eq!((owner, p), (user("alice"), provider("openai")));
    let (owner, p, _) = pick(&snap, &for_user("bob", Some("acme"))).unwrap();
    assert_eq!((owner, p), (instance("acme"), provider("anthropic")));
    let (owner, p, _) = pick(&snap, &for_user("bob", None)).unwrap();
    assert_eq!((owner, p), (Owner::Global, provider("openai")));
}

#[test]
fn disabled_configs_are_skipped() {
    let mut configs = three_levels();
    configs[0] = disabled(configs[0].clone());
    let snap = snapshot(configs, vec![]);
    let mut request = for_user("alice", Some("acme"));
    request.provider = Some(provider("openai"));
    assert_eq!(pick(&snap, &request).unwrap().0, instance("acme"));
    // Her disabled default no longer names the provider either.
    let (owner, p, _) = pick(&snap, &for_user("alice", Some("acme"))).unwrap();
    assert_eq!((owner, p), (instance("acme"), provider("anthropic")));
}

#[test]
fn sources_narrow_the_chain() {
    let snap = snapshot(three_levels(), vec![]);
    let mut request = for_user("bob", Some("acme"));
    request.provider = Some(provider("openai"));
    request.sources = Some(vec![OwnerKind::User]);
    let err = pick(&snap, &request).unwrap_err();
    assert_eq!(err.code(), "provider_not_configured");
    assert_eq!(
        err.to_string(),
        "no enabled config for provider openai in user bob"
    );
    request.sources = Some(vec![OwnerKind::User, OwnerKind::Global]);
    assert_eq!(pick(&snap, &request).unwrap().0, Owner::Global);
    request.sources = Some(vec![OwnerKind::Instance]);
    request.instance = None;
    assert_eq!(pick(&snap, &request).unwrap_err().field(), Some("sources"));
}

#[test]
fn a_task_is_looked_up_along_the_chain() {
    let assigned = |owner: Owner, p: &str, model: &str| (owner, assignment("summarize", p, model));
    let cases = [
        (
            vec![assigned(user("alice"), "gemini", "gemini-2.5-flash")],
            "gemini",
            "gemini-2.5-flash",
        ),
        (
            vec![
                assigned(instance("acme"), "anthropic", "claude-haiku"),
                assigned(Owner::Global, "openai", "gpt-4o-mini"),
            ],
            "anthropic",
            "claude-haiku",
        ),
        (
            vec![assigned(Owner::Global, "openai", "gpt-4o-mini")],
            "openai",
            "gpt-4o-mini",
        ),
    ];
    for (assignments, expected_provider, expected_model) in cases {
        let snap = snapshot(three_levels(), assignments);
        let mut request = for_user("alice", Some("acme"));
        request.task = Some(TaskName::parse("summarize").unwrap());
        let (_, p, model) = pick(&snap, &request).unwrap();
        assert_eq!(p, provider(expected_provider));
        assert_eq!(model.as_deref(), Some(expected_model));
    }
    let mut request = for_user("alice", Some("acme"));
    request.task = Some(TaskName::parse("translate").unwrap());
    let err = pick(&snapshot(three_levels(), vec![]), &request).unwrap_err();
    assert_eq!(err.code(), "task_not_assigned");
    assert_eq!(
        err.to_string(),
        "task translate is not assigned in user alice, instance acme, global"
    );
}

#[test]
fn model_and_base_url_precedence() {
    let mut configs = three_levels();
    configs[0] = with_model(configs[0].clone(), "gpt-4.1");
    configs[0].base_url = Some(BaseUrl::parse("https://gateway.example.com/v1").unwrap());
    let snap = snapshot(
        configs,
        vec![(
            Owner::Global,
            assignment("summarize", "openai", "gpt-4o-mini"),
        )],
    );
    let chain = for_user("alice", None).chain().unwrap();
    let mut request = for_user("alice", None);
    request.provider = Some(provider("openai"));
    let r = choose(&chain, &snap, &request).unwrap();
    assert_eq!(r.model.as_deref(), Some("gpt-4.1"), "the config's model");
    assert_eq!(
        r.base_url.as_deref(),
        Some("https://gateway.example.com/v1")
    );
    request.model = Some(ModelName::parse("o3").unwrap());
    assert_eq!(
        choose(&chain, &snap, &request).unwrap().model.as_deref(),
        Some("o3")
    );
    let mut by_task = for_user("alice", None);
    by_task.task = Some(TaskName::parse("summarize").unwrap());
    assert_eq!(
        choose(&chain, &snap, &by_task).unwrap().model.as_deref(),
        Some("gpt-4o-mini"),
        "the assignment's model beats the config's"
    );
    let mut global_gemini = for_user("bob", None);
    global_gemini.provider = Some(provider("gemini"));
    let r = choose(&[user("bob"), Owner::Global], &snap, &global_gemini).unwrap();
    let spec = provider("gemini").spec();
    assert_eq!(
        r.model.as_deref(),
        spec.default_model,
        "the catalog default"
    );
    assert_eq!(r.base_url.as_deref(), spec.default_base_url);
}

#[test]
fn malformed_requests_are_validation_errors() {
    let mut both = for_user("alice", None);
    both.task = Some(TaskName::parse("summarize").unwrap());
    both.provider = Some(provider("openai"));
    assert_eq!(both.chain().unwrap_err().field(), Some("provider"));
    assert_eq!(
        ResolveRequest::default().chain().unwrap_err().field(),
        Some("user")
    );
    let no_default = snapshot(vec![], vec![]);
    let err = pick(&no_default, &for_user("alice", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no enabled config marked as default in user alice, global"
    );
}

fn chain_store(f: &mut Fixture, configs: Vec<ProviderConfig>) {
    f.configs
        .expect_load_chain()
        .times(1)
        .returning(move |query: ChainQuery| {
            let configs = configs
                .iter()
                .filter(|c| c.enabled && query.owners.contains(&c.owner))
                .filter(|c| query.provider.is_none_or(|p| p == c.provider))
                .cloned()
                .collect();
            Ok(ChainSnapshot {
                configs,
                assignments: vec![],
            })
        });
}

#[tokio::test]
async fn resolve_opens_the_chosen_config_only_and_audits_without_the_key() {
    let mut f = Fixture::new();
    chain_store(&mut f, three_levels());
    f.cipher
        .expect_open()
        .times(1)
        .returning(|sealed, binding| {
            assert_eq!(binding.owner, instance("acme"));
            assert!(String::from_utf8_lossy(sealed.as_bytes()).contains("instance:acme"));
            Ok(SecretValue::new("sk-inst-0123456789abcdefghij"))
        });
    let (svc, events) = f.service();
    let mut request = for_user("bob", Some("acme"));
    request.provider = Some(provider("openai"));
    let credential = svc.resolve(&service_actor(), request).await.unwrap();
    assert_eq!(
        credential.fields()["api_key"],
        "sk-inst-0123456789abcdefghij"
    );
    let r = &credential.resolution;
    assert_eq!((r.source.config_id, r.source.version), (ConfigId(3), 3));
    assert_eq!(
        r.fallbacks.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ConfigId(4)]
    );
    let events = events.lock().unwrap();
    let event = &events[0];
    assert_eq!(event.action, AuditAction::Resolve);
    assert_eq!(event.actor, "billing");
    assert_eq!(event.on_behalf_of.as_ref().unwrap().as_str(), "bob");
    assert_eq!(event.instance.as_ref().unwrap().as_str(), "acme");
    assert_eq!(event.owner, instance("acme"));
    assert_eq!(event.config_id, Some(ConfigId(3)));
    assert!(!format!("{event:?}").contains("sk-inst"));
}

#[tokio::test]
async fn a_refused_resolution_is_audited_too() {
    let mut f = Fixture::new();
    chain_store(&mut f, vec![]);
    let (svc, events) = f.service();
    let mut request = for_user("bob", None);
    request.provider = Some(provider("openai"));
    let err = svc.resolve(&service_actor(), request).await.unwrap_err();
    assert_eq!(err.code(), "provider_not_configured");
    let events = events.lock().unwrap();
    assert_eq!(events[0].owner, user("bob"));
    assert_eq!(
        events[0].outcome,
        AuditOutcome::Failure("provider_not_configured".into())
    );
}

#[tokio::test]
async fn only_service_tokens_resolve_and_the_effective_view_never_decrypts() {
    let (svc, _) = Fixture::new().no_sealing().service();
    for actor in [writer(), superadmin()] {
        let err = svc.resolve(&actor, for_user("u1", None)).await.unwrap_err();
        assert_eq!(err.code(), "forbidden");
    }
    let mut f = Fixture::new().no_sealing();
    chain_store(&mut f, three_levels());
    let (svc, _) = f.service();
    let alice = Actor::new(
        UserId::parse("alice").unwrap(),
        [Scope::Read],
        [],
        Some(InstanceId::parse("acme").unwrap()),
    );
    let view = svc
        .effective(&alice, &user("alice"), None, None)
        .await
        .unwrap();
    assert_eq!(
        (view.source.owner, view.provider),
        (user("alice"), provider("openai"))
    );
    let err = svc
        .effective(&actor("alice", &[Scope::Write]), &user("alice"), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the token lacks the `read` scope");
    let err = svc
        .effective(&service_actor(), &user("billing"), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
}

const OWNERS: [&str; 3] = ["user", "instance", "global"];
const PROVIDERS: [&str; 3] = ["openai", "anthropic", "gemini"];

fn owner_at(level: usize) -> Owner {
    match level {
        0 => user("alice"),
        1 => instance("acme"),
        _ => Owner::Global,
    }
}

/// A random chain state: per level and provider, maybe a config, enabled or not, default or not.
fn states() -> impl Strategy<Value = Vec<(usize, usize, bool, bool)>> {
    proptest::collection::vec((0..3usize, 0..3usize, any::<bool>(), any::<bool>()), 0..9)
}

fn configs_of(state: &[(usize, usize, bool, bool)]) -> Vec<ProviderConfig> {
    let mut configs: Vec<ProviderConfig> = Vec::new();
    for (i, (level, p, enabled, default)) in state.iter().enumerate() {
        let owner = owner_at(*level);
        if configs
            .iter()
            .any(|c| c.owner == owner && c.provider == provider(PROVIDERS[*p]))
        {
            continue;
        }
        let has_default = configs.iter().any(|c| c.owner == owner && c.is_default);
        let mut c = config(i as i64 + 1, &owner, PROVIDERS[*p], Some(STORED));
        c.enabled = *enabled;
        c.is_default = *default && *enabled && !has_default;
        configs.push(c);
    }
    configs
}

proptest! {
    #[test]
    fn the_credential_is_the_first_enabled_match_along_the_chain(
        state in states(),
        p in 0..3usize,
        sources in proptest::sample::subsequence(OWNERS.to_vec(), 1..=3),
    ) {
        let configs = configs_of(&state);
        let kinds: Vec<OwnerKind> = sources.iter().map(|s| match *s {
            "user" => OwnerKind::User,
            "instance" => OwnerKind::Instance,
            _ => OwnerKind::Global,
        }).collect();
        let mut request = for_user("alice", Some("acme"));
        request.provider = Some(provider(PROVIDERS[p]));
        request.sources = Some(kinds.clone());
        let chain = request.chain().unwrap();
        let expected = chain.iter().find_map(|owner| configs.iter().find(|c| {
            c.owner == *owner && c.provider == provider(PROVIDERS[p]) && c.enabled
        }));
        let got = choose(&chain, &snapshot(configs.clone(), vec![]), &request);
        match expected {
            Some(c) => prop_assert_eq!(got.unwrap().source.config_id, c.id),
            None => prop_assert_eq!(got.unwrap_err().code(), "provider_not_configured"),
        }

        // Without a provider, the first enabled default along the chain names it.
        request.provider = None;
        let default = chain.iter().find_map(|owner| {
            configs.iter().find(|c| c.owner == *owner && c.is_default && c.enabled)
        });
        let got = choose(&chain, &snapshot(configs.clone(), vec![]), &request);
        match default {
            Some(d) => {
                let r = got.unwrap();
                prop_assert_eq!(r.provider, d.provider);
                prop_assert!(chain.iter().position(|o| *o == r.source.owner)
                    <= chain.iter().position(|o| *o == d.owner));
            }
            None => prop_assert_eq!(got.unwrap_err().code(), "provider_not_configured"),
        }
    }
}
