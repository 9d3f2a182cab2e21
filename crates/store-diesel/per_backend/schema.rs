//! Diesel table definitions matching `migrations/postgres` and `migrations/sqlite`. The two
//! differ only in how times and JSON are stored, named by `crate::backend::sql`.

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::sql::{Json, Time};

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
        last_test_at -> Nullable<Time>,
        last_test_success -> Nullable<Bool>,
        last_test_latency_ms -> Nullable<BigInt>,
        last_test_failure -> Nullable<Text>,
        last_test_message -> Nullable<Text>,
        created_at -> Time,
        updated_at -> Time,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::sql::Json;

    provider_config_secrets (config_id, field) {
        config_id -> BigInt,
        field -> Text,
        sealed -> Binary,
        hints -> Json,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::sql::Time;

    task_assignments (owner_kind, owner_id, task) {
        owner_kind -> Text,
        owner_id -> Text,
        task -> Text,
        provider -> Text,
        model -> Text,
        created_at -> Time,
        updated_at -> Time,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::sql::{Json, Time};

    settings_documents (owner_kind, owner_id) {
        owner_kind -> Text,
        owner_id -> Text,
        document -> Json,
        version -> BigInt,
        created_at -> Time,
        updated_at -> Time,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::sql::Time;

    audit_events (id) {
        id -> BigInt,
        actor -> Text,
        owner_kind -> Text,
        owner_id -> Text,
        provider -> Nullable<Text>,
        config_id -> Nullable<BigInt>,
        action -> Text,
        outcome -> Text,
        at -> Time,
        on_behalf_of -> Nullable<Text>,
        instance_id -> Nullable<Text>,
        call_latency_ms -> Nullable<BigInt>,
        call_upstream_status -> Nullable<Integer>,
        call_request_bytes -> Nullable<BigInt>,
        call_response_bytes -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::sql::Time;

    master_key_checks (key_id) {
        key_id -> Text,
        check_value -> Text,
        created_at -> Time,
    }
}

diesel::joinable!(provider_config_secrets -> provider_configs (config_id));
diesel::allow_tables_to_appear_in_same_query!(
    provider_configs,
    provider_config_secrets,
    task_assignments
);

diesel::alias!(
    provider_configs as page_configs: PageConfigs,
    audit_events as oldest_events: OldestEvents
);
