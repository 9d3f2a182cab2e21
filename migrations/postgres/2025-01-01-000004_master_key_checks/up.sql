-- One check value per master key id, so a node started with a wrong key refuses to serve.
CREATE TABLE master_key_checks (
    key_id      TEXT        PRIMARY KEY,
    check_value TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
