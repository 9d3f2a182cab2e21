-- Append-only audit trail. Never holds a secret: there is no column a secret could go in.
CREATE TABLE audit_events (
    id         BIGSERIAL PRIMARY KEY,
    actor      TEXT        NOT NULL,
    owner_kind TEXT        NOT NULL,
    owner_id   TEXT        NOT NULL,
    provider   TEXT,
    -- no foreign key: events outlive the configs they describe
    config_id  BIGINT,
    action     TEXT        NOT NULL,
    outcome    TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL
);

CREATE INDEX audit_events_owner_recent ON audit_events (owner_kind, owner_id, at DESC, id DESC);
