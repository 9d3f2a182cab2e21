DROP INDEX audit_events_at;
DROP INDEX audit_events_actor;
DROP INDEX audit_events_instance;
DROP INDEX audit_events_on_behalf_of;
DROP INDEX audit_events_owner;
CREATE INDEX audit_events_owner_recent ON audit_events (owner_kind, owner_id, at DESC, id DESC);

-- The call check goes with the column it is declared on, which is dropped first.
ALTER TABLE audit_events DROP COLUMN call_response_bytes;
ALTER TABLE audit_events DROP COLUMN call_request_bytes;
ALTER TABLE audit_events DROP COLUMN call_upstream_status;
ALTER TABLE audit_events DROP COLUMN call_latency_ms;
ALTER TABLE audit_events DROP COLUMN instance_id;
ALTER TABLE audit_events DROP COLUMN on_behalf_of;
