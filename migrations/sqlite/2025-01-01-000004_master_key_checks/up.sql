-- One check value per master key id, so a node started with a wrong key refuses to serve.
CREATE TABLE master_key_checks (
    key_id      TEXT   PRIMARY KEY,
    check_value TEXT   NOT NULL,
    -- Unix microseconds
    created_at  BIGINT NOT NULL
);
