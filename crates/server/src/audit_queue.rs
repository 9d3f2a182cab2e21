//! The audit queue of gateway calls: events are handed over without waiting and written to the
//! store in batches by one background task, so a call's answer never waits for an audit row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_settings_domain::ports::{AuditLog, AuditQueue};
use llm_settings_domain::AuditEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events written per statement at most.
const BATCH: usize = 256;
/// How long the writer waits for more events before writing a partial batch.
const LINGER: Duration = Duration::from_millis(20);

/// Queues audit events for a background writer. Cloning shares the queue.
#[derive(Debug, Clone)]
pub struct BatchingAuditQueue {
    tx: mpsc::Sender<AuditEvent>,
    dropped: Arc<AtomicU64>,
}

impl BatchingAuditQueue {
    /// Starts the writer over `log`, holding at most `capacity` events in memory; returns the
    /// queue and the writer task, which ends after every queue handle is dropped and the
    /// remaining events are written.
    pub fn start(log: Arc<dyn AuditLog>, capacity: usize) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = tokio::spawn(write_batches(rx, log, dropped.clone()));
        (Self { tx, dropped }, writer)
    }

    /// Events that could not be written (queue full, or the store failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AuditQueue for BatchingAuditQueue {
    fn submit(&self, event: AuditEvent) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(crate::metrics::AUDIT_WRITES_FAILED).increment(1);
            tracing::warn!("the audit queue is full; a gateway audit event was dropped");
        }
    }
}

async fn write_batches(
    mut rx: mpsc::Receiver<AuditEvent>,
    log: Arc<dyn AuditLog>,
    dropped: Arc<AtomicU64>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(event)) => batch.push(event),
                Ok(None) | Err(_) => break,
            }
        }
        let count = batch.len() as u64;
        if let Err(err) = log.record_many(batch).await {
            dropped.fetch_add(count, Ordering::Relaxed);
            tracing::warn!(
                code = err.code(),
                count,
                "gateway audit events not recorded"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use llm_settings_domain::ports::MockAuditLog;
    use llm_settings_domain::{AuditAction, AuditOutcome, Owner, Timestamp};

    use super::*;

    fn event(i: i64) -> AuditEvent {
        AuditEvent::new(
            format!("svc{i}"),
            Owner::Global,
            AuditAction::Gateway,
            AuditOutcome::Success,
            Timestamp::from_unix_micros(i).unwrap(),
        )
    }

    #[tokio::test]
    async fn events_are_written_in_batches_and_flushed_at_the_end() {
        let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
        let seen = batches.clone();
        let mut log = MockAuditLog::new();
        log.expect_record_many().returning(move |events| {
            seen.lock().unwrap().push(events.len());
            Ok(())
        });
        let (queue, writer) = BatchingAuditQueue::start(Arc::new(log), 10_000);
        for i in 0..600 {
            queue.submit(event(i));
        }
        drop(queue);
        writer.await.unwrap();
        let batches = batches.lock().unwrap();
        assert_eq!(batches.iter().sum::<usize>(), 600);
        assert!(batches.len() < 600, "batched: {batches:?}");
        assert!(batches.iter().all(|n| *n <= BATCH));
    }

    #[tokio::test]
    async fn a_full_queue_or_a_failed_write_is_counted_not_blocking() {
        let mut log = MockAuditLog::new();
        log.expect_record_many()
            .returning(|_| Err(llm_settings_domain::Error::Unavailable("down".into())));
        let (queue, writer) = BatchingAuditQueue::start(Arc::new(log), 1);
        for i in 0..50 {
            queue.submit(event(i));
        }
        let handle = queue.clone();
        drop(queue);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(handle.dropped(), 50, "every event either refused or failed");
        drop(handle);
        writer.await.unwrap();
    }
}
