//! Statement counts, held the same on every store: checking a connection out adds none, a
//! list, a resolution chain and a batch of audit events are one statement each, an insert
//! learns whether its provider is taken and whether it is the owner's first config from one
//! read, and a chain statement is prepared once per provider and task shape (whatever the
//! number of owners) and then reused from the connection's statement cache.
//!
//! Statements are counted through diesel's process-wide instrumentation, so these checks
//! run alone in a test binary of their own ([`statement_count_tests!`](crate::statement_count_tests)).

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use diesel::connection::{set_default_instrumentation, InstrumentationEvent};
use llm_settings_domain::ports::{AuditLog, ConfigRepository, TaskAssignmentRepository};
use llm_settings_domain::{
    AuditAction, AuditEvent, AuditOutcome, ChainQuery, Owner, TaskAssignment, TaskName,
};

use crate::fixtures::{model, new_config, now, provider, user};
use crate::StoreFixture;

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The SQL of every statement prepared and put in a connection's statement cache.
static PREPARED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn seen() -> MutexGuard<'static, Vec<String>> {
    SEEN.lock().unwrap_or_else(|p| p.into_inner())
}

fn prepared() -> MutexGuard<'static, Vec<String>> {
    PREPARED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records the SQL of every statement any connection opened from now on starts.
pub fn count_every_statement() {
    set_default_instrumentation(|| {
        Some(Box::new(|event: InstrumentationEvent<'_>| match event {
            InstrumentationEvent::StartQuery { query, .. } => seen().push(query.to_string()),
            InstrumentationEvent::CacheQuery { sql, .. } => prepared().push(sql.to_owned()),
            _ => {}
        }))
    })
    .expect("install the statement counter");
}

/// What `op` returned, and the statements it started.
async fn statements_of<T>(op: impl Future<Output = T>) -> (T, Vec<String>) {
    seen().clear();
    let out = op.await;
    (out, std::mem::take(&mut *seen()))
}

/// Every statement count of this module, on one store.
pub async fn operations_issue_the_statements_they_should<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("counted");
    store
        .insert(new_config(&owner, "anthropic", now()))
        .await
        .expect("insert");

    let (created, statements) =
        statements_of(store.insert(new_config(&owner, "openai", now()))).await;
    created.expect("insert");
    let inserting = statements
        .iter()
        .position(|q| q.starts_with("INSERT INTO") && q.contains("provider_configs"))
        .unwrap_or_else(|| panic!("no INSERT of a config: {statements:#?}"));
    let reads = statements[..inserting]
        .iter()
        .filter(|q| q.starts_with("SELECT") && q.contains("provider_configs"))
        .count();
    assert_eq!(
        reads, 1,
        "one read checks for a duplicate and a first config: {statements:#?}"
    );

    let (_, statements) = statements_of(async {
        for _ in 0..50 {
            assert_eq!(
                ConfigRepository::list(&*store, &owner)
                    .await
                    .expect("list")
                    .len(),
                2
            );
        }
    })
    .await;
    assert!(
        !statements
            .iter()
            .any(|q| q.trim_start().starts_with("SELECT 1") || q.contains("SELECT $1")),
        "a health-check query ran on checkout: {statements:#?}"
    );
    assert_eq!(
        statements.len(),
        50,
        "one statement per list, nothing per checkout"
    );

    let task = TaskName::parse("summarize").expect("task");
    let assignment = TaskAssignment {
        task: task.clone(),
        provider: provider("openai"),
        model: model("gpt-4o-mini"),
    };
    store
        .upsert(&Owner::Global, vec![assignment], now())
        .await
        .expect("assign");
    let query = ChainQuery {
        owners: vec![owner.clone(), Owner::Global],
        provider: None,
        task: Some(task),
    };
    let (snapshot, statements) = statements_of(store.load_chain(query)).await;
    let snapshot = snapshot.expect("load chain");
    assert_eq!((snapshot.configs.len(), snapshot.assignments.len()), (2, 1));
    assert_eq!(statements.len(), 1, "a chain is one read: {statements:#?}");

    // Chains of one, two and three owners, with and without a provider, are one statement
    // shape each with a task and without: prepared once on a connection, then reused.
    let shapes = |n: usize| {
        let owners = [
            user(&format!("shape-{n}")),
            Owner::Instance(
                llm_settings_domain::InstanceId::parse(format!("shape-{n}")).expect("instance"),
            ),
            Owner::Global,
        ];
        let task = TaskName::parse("summarize").expect("task");
        let mut queries = Vec::new();
        for count in 1..=3 {
            for provider_name in [None, Some(provider("openai"))] {
                for task in [None, Some(task.clone())] {
                    queries.push(ChainQuery {
                        owners: owners[3 - count..].to_vec(),
                        provider: provider_name,
                        task,
                    });
                }
            }
        }
        queries
    };
    prepared().clear();
    for query in shapes(0) {
        store.load_chain(query).await.expect("load chain");
    }
    let shaped: Vec<String> = std::mem::take(&mut *prepared())
        .into_iter()
        .filter(|q| q.contains("provider_configs"))
        .collect();
    assert!(
        shaped.len() <= 4,
        "one chain statement per provider and task shape, whatever the owners: {shaped:#?}"
    );
    for n in 1..=3 {
        for query in shapes(n) {
            store.load_chain(query).await.expect("load chain");
        }
    }
    let again: Vec<String> = std::mem::take(&mut *prepared())
        .into_iter()
        .filter(|q| q.contains("provider_configs"))
        .collect();
    assert!(
        again.is_empty(),
        "a chain statement was prepared again: {again:#?}"
    );

    let events = (0..3)
        .map(|_| {
            AuditEvent::new(
                "counted",
                owner.clone(),
                AuditAction::Gateway,
                AuditOutcome::Success,
                now(),
            )
        })
        .collect();
    let (recorded, statements) = statements_of(store.record_many(events)).await;
    recorded.expect("record many");
    assert_eq!(
        statements.len(),
        1,
        "a batch is one INSERT: {statements:#?}"
    );
}
