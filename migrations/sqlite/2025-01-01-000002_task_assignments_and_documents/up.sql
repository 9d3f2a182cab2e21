-- Per owner: which provider and model to use for a named task. Times in Unix microseconds.
CREATE TABLE task_assignments (
    owner_kind TEXT   NOT NULL,
    owner_id   TEXT   NOT NULL,
    task       TEXT   NOT NULL,
    provider   TEXT   NOT NULL,
    model      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (owner_kind, owner_id, task)
);

-- Per owner: the application settings document (JSON text).
CREATE TABLE settings_documents (
    owner_kind TEXT   NOT NULL,
    owner_id   TEXT   NOT NULL,
    document   TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (owner_kind, owner_id)
);
