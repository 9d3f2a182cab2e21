DROP INDEX audit_events_at;
DROP INDEX audit_events_actor;
DROP INDEX audit_events_instance;
DROP INDEX audit_events_on_behalf_of;
DROP INDEX audit_events_owner;
CREATE INDEX audit_events_owner_recent ON audit_events (owner_kind, owner_id, at DESC, id DESC);

ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_call_check,
    DROP COLUMN call_response_bytes,
    DROP COLUMN call_request_bytes,
    DROP COLUMN call_upstream_status,
    DROP COLUMN call_latency_ms,
    DROP COLUMN instance_id,
    DROP COLUMN on_behalf_of;
