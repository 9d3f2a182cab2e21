-- Resolutions and gateway calls: the user a call was made for, the instance it was made
-- in, and the figures of the call. Ids and numbers only: still no column a secret could go in.
ALTER TABLE audit_events
    ADD COLUMN on_behalf_of         TEXT,
    ADD COLUMN instance_id          TEXT,
    ADD COLUMN call_latency_ms      BIGINT,
    ADD COLUMN call_upstream_status INTEGER,
    ADD COLUMN call_request_bytes   BIGINT,
    ADD COLUMN call_response_bytes  BIGINT,
    ADD CONSTRAINT audit_events_call_check CHECK (
        (call_latency_ms IS NULL) = (call_request_bytes IS NULL)
        AND (call_latency_ms IS NULL) = (call_response_bytes IS NULL)
        AND (call_upstream_status IS NULL OR call_latency_ms IS NOT NULL)
    );

-- Listings are newest first by id (the cursor), narrowed by scope, owner, actor or time.
DROP INDEX audit_events_owner_recent;
CREATE INDEX audit_events_owner ON audit_events (owner_kind, owner_id, id DESC);
CREATE INDEX audit_events_on_behalf_of ON audit_events (on_behalf_of, id DESC)
    WHERE on_behalf_of IS NOT NULL;
CREATE INDEX audit_events_instance ON audit_events (instance_id, id DESC)
    WHERE instance_id IS NOT NULL;
CREATE INDEX audit_events_actor ON audit_events (actor, id DESC);
-- Pruning deletes the oldest first.
CREATE INDEX audit_events_at ON audit_events (at, id);
