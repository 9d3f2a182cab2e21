-- One owner's credentials and settings for one provider. Secrets live in
-- provider_config_secrets, sealed; this table never holds a plaintext key.
CREATE TABLE provider_configs (
    id                   BIGSERIAL PRIMARY KEY,
    owner_kind           TEXT        NOT NULL,
    -- '' for the global owner
    owner_id             TEXT        NOT NULL,
    provider             TEXT        NOT NULL,
    -- non-secret credential fields (organization, region, endpoint ...): {"name": "value"}.
    -- JSON rather than JSONB: kept verbatim, and a \u0000 escape is accepted, not refused.
    settings             JSON        NOT NULL DEFAULT '{}'::json,
    model                TEXT,
    base_url             TEXT,
    enabled              BOOLEAN     NOT NULL DEFAULT TRUE,
    is_default           BOOLEAN     NOT NULL DEFAULT FALSE,
    version              BIGINT      NOT NULL DEFAULT 1,
    last_test_at         TIMESTAMPTZ,
    last_test_success    BOOLEAN,
    last_test_latency_ms BIGINT,
    last_test_failure    TEXT,
    last_test_message    TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    CONSTRAINT provider_configs_owner_provider_key UNIQUE (owner_kind, owner_id, provider),
    CONSTRAINT provider_configs_owner_kind_check
        CHECK (owner_kind IN ('global', 'instance', 'user')),
    CONSTRAINT provider_configs_owner_id_check
        CHECK ((owner_kind = 'global') = (owner_id = '')),
    CONSTRAINT provider_configs_default_enabled_check CHECK (enabled OR NOT is_default),
    CONSTRAINT provider_configs_last_test_check
        CHECK ((last_test_at IS NULL) = (last_test_success IS NULL)),
    CONSTRAINT provider_configs_settings_check CHECK (json_typeof(settings) = 'object')
);

-- The default invariant, enforced by the database itself: at most one default per owner.
CREATE UNIQUE INDEX provider_configs_one_default_per_owner
    ON provider_configs (owner_kind, owner_id)
    WHERE is_default;

-- Sealed secret fields of a config, each with the display hints computed at write time.
CREATE TABLE provider_config_secrets (
    config_id BIGINT NOT NULL REFERENCES provider_configs (id) ON DELETE CASCADE,
    field     TEXT   NOT NULL,
    sealed    BYTEA  NOT NULL,
    -- display hints of the secret, computed when it was written
    hints     JSON   NOT NULL,
    PRIMARY KEY (config_id, field)
);
