//! Diesel table definitions matching `migrations/postgres`.

diesel::table! {
    provider_configs (id) {
        id -> BigInt,
        owner_kind -> Text,
        owner_id -> Text,
        provider -> Text,
        settings -> Json,
        model -> Nullable<Text>,
        base_url -> Nullable<Text>,
        enabled -> Bool,
        is_default -> Bool,
        version -> BigInt,
        last_test_at -> Nullable<Timestamptz>,
        last_test_success -> Nullable<Bool>,
        last_test_latency_ms -> Nullable<BigInt>,
        last_test_failure -> Nullable<Text>,
        last_test_message -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    provider_config_secrets (config_id, field) {
        config_id -> BigInt,
        field -> Text,
        sealed -> Bytea,
        hints -> Json,
    }
}

diesel::table! {
    task_assignments (owner_kind, owner_id, task) {
        owner_kind -> Text,
        owner_id -> Text,
        task -> Text,
        provider -> Text,
        model -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    settings_documents (owner_kind, owner_id) {
        owner_kind -> Text,
        owner_id -> Text,
        document -> Json,
        version -> BigInt,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        actor -> Text,
        owner_kind -> Text,
        owner_id -> Text,
        provider -> Nullable<Text>,
        config_id -> Nullable<BigInt>,
        action -> Text,
        outcome -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    master_key_checks (key_id) {
        key_id -> Text,
        check_value -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(provider_config_secrets -> provider_configs (config_id));
diesel::allow_tables_to_appear_in_same_query!(provider_configs, provider_config_secrets);
