-- Per owner: which provider and model to use for a named task.
CREATE TABLE task_assignments (
    owner_kind TEXT        NOT NULL,
    owner_id   TEXT        NOT NULL,
    task       TEXT        NOT NULL,
    provider   TEXT        NOT NULL,
    model      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_kind, owner_id, task)
);

-- Per owner: the application settings document (generation defaults, free-form sections),
-- kept verbatim as JSON (JSONB would refuse a \u0000 escape a client may send).
CREATE TABLE settings_documents (
    owner_kind TEXT        NOT NULL,
    owner_id   TEXT        NOT NULL,
    document   JSON        NOT NULL,
    version    BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_kind, owner_id)
);
