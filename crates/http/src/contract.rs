//! What the handlers' annotations cannot say by themselves, stated once for every operation of
//! the generated document from the surface table: each surface's provider names as enums, the
//! constraints of ids and headers the service checks, and request bodies whose `provider`
//! accepts exactly the surface's names. The document then refuses what the service refuses.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, Object, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Components, RefOr};

use llm_settings_domain::Catalog;

use crate::naming::ProviderNames;
use crate::surface::Surface;

/// Instance ids in a header: visible ASCII, no spaces (the domain's rule for instance ids; a
/// header carries nothing else), 1–255 bytes.
const INSTANCE_HEADER_PATTERN: &str = r"^[!-~]+$";
/// User ids in a header: visible ASCII, inner spaces allowed, none around.
const USER_HEADER_PATTERN: &str = r"^[!-~](?:[ -~]*[!-~])?$";
/// Instance ids in a path segment: no whitespace, control character or `/`.
pub const INSTANCE_SEGMENT_PATTERN: &str = r"^[^\s/\x00-\x1f\x7f-\x9f]+$";
/// Task names: 1–64 of `A-Z a-z 0-9 _ - . :`.
const TASK_PATTERN: &str = r"^[A-Za-z0-9_.:-]{1,64}$";
/// An audit owner filter: `global`, `instance:ID` or `user:ID`.
const OWNER_PATTERN: &str = r"^(?:global|instance:[^\s/\x00-\x1f\x7f-\x9f]+|user:[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?)$";
/// Longest id the domain accepts, in bytes (so also in ASCII characters).
const MAX_ID_LEN: usize = 255;

/// The names a surface accepts for providers, in its display order, aliases after them.
pub fn provider_names(surface: &Surface) -> Vec<Value> {
    let catalog = Catalog::all();
    let mut names: Vec<String> = surface
        .names
        .listed(&catalog)
        .into_iter()
        .map(|p| surface.names.wire_name(p).to_owned())
        .collect();
    if let crate::naming::Naming::Catalog { .. } = surface.names {
        for provider in surface.names.listed(&catalog) {
            for alias in provider.spec().aliases {
                if !names.iter().any(|n| n == alias) {
                    names.push((*alias).to_owned());
                }
            }
        }
    }
    names.into_iter().map(Value::String).collect()
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// The schema of a parameter the service checks, by name; `None` leaves it as annotated.
fn parameter_schema(surface: &Surface, p: &Parameter) -> Option<Object> {
    let schema = match (p.name.as_str(), &p.parameter_in) {
        ("provider", ParameterIn::Path) => string_schema()
            .enum_values(Some(provider_names(surface)))
            .build(),
        // One segment here (the service also takes several, see the description): no
        // backslash, space or control character, not `.` or `..`.
        ("path", ParameterIn::Path) => string_schema()
            .max_length(Some(4096))
            .pattern(Some(r"^(?!\.\.?$)[^/\\ \x00-\x1f\x7f]+$"))
            .build(),
        ("config_id", ParameterIn::Path) => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(1))
            .build(),
        ("task", ParameterIn::Path | ParameterIn::Query) => {
            string_schema().pattern(Some(TASK_PATTERN)).build()
        }
        ("provider", ParameterIn::Query) => string_schema()
            .enum_values(Some(provider_names(surface)))
            .build(),
        ("instance_id", ParameterIn::Path) => string_schema()
            .min_length(Some(1))
            .max_length(Some(MAX_ID_LEN))
            .pattern(Some(INSTANCE_SEGMENT_PATTERN))
            .build(),
        ("X-Instance-Id", ParameterIn::Header) => string_schema()
            .min_length(Some(1))
            .max_length(Some(MAX_ID_LEN))
            .pattern(Some(INSTANCE_HEADER_PATTERN))
            .build(),
        ("X-LLM-Settings-Fallback", ParameterIn::Header) => {
            ObjectBuilder::new().schema_type(Type::Boolean).build()
        }
        ("X-On-Behalf-Of", ParameterIn::Header) => string_schema()
            .min_length(Some(1))
            .max_length(Some(MAX_ID_LEN))
            .pattern(Some(USER_HEADER_PATTERN))
            .build(),
        // Audit filters (the cursor is opaque: only one a page handed out is accepted).
        ("cursor", ParameterIn::Query) => string_schema()
            .min_length(Some(1))
            .pattern(Some(r"^[A-Za-z0-9_-]+$"))
            .build(),
        ("owner", ParameterIn::Query) => string_schema().pattern(Some(OWNER_PATTERN)).build(),
        ("actor", ParameterIn::Query) => string_schema()
            .min_length(Some(1))
            .max_length(Some(MAX_ID_LEN))
            .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]+$"))
            .build(),
        _ => return None,
    };
    Some(schema)
}

/// Gives the parameters of an operation the constraints the service checks.
pub fn constrain_parameters(surface: &Surface, parameters: &mut [Parameter]) {
    for p in parameters {
        if let Some(schema) = parameter_schema(surface, p) {
            p.schema = Some(RefOr::T(Schema::Object(schema)));
        }
    }
}

/// The component schemas a request body reaches, through references, arrays and compositions.
fn reached(schema: &RefOr<Schema>, components: &Components, out: &mut Vec<String>) {
    match schema {
        RefOr::Ref(r) => {
            let name = r.ref_location.rsplit('/').next().unwrap_or_default();
            if !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
                if let Some(target) = components.schemas.get(name) {
                    reached(target, components, out);
                }
            }
        }
        RefOr::T(Schema::Object(o)) => {
            for property in o.properties.values() {
                reached(property, components, out);
            }
            if let Some(AdditionalProperties::RefOr(values)) = o.additional_properties.as_deref() {
                reached(values, components, out);
            }
        }
        RefOr::T(Schema::Array(a)) => {
            if let ArrayItems::RefOrSchema(items) = &a.items {
                reached(items, components, out);
            }
        }
        RefOr::T(Schema::OneOf(o)) => o.items.iter().for_each(|s| reached(s, components, out)),
        RefOr::T(Schema::AllOf(o)) => o.items.iter().for_each(|s| reached(s, components, out)),
        RefOr::T(Schema::AnyOf(o)) => o.items.iter().for_each(|s| reached(s, components, out)),
        RefOr::T(_) => {}
    }
}

/// Request body schemas with a `provider` field: which surface names providers in each.
#[derive(Debug, Default)]
pub struct BodyProviders(BTreeMap<String, Vec<Value>>);

impl BodyProviders {
    /// Records the schemas a request body of `surface` reaches.
    pub fn record(&mut self, surface: &Surface, body: &RefOr<Schema>, components: &Components) {
        let mut names = Vec::new();
        reached(body, components, &mut names);
        for name in names {
            let providers = provider_names(surface);
            let previous = self.0.insert(name.clone(), providers.clone());
            debug_assert!(
                previous.is_none_or(|p| p == providers),
                "{name} is a request body of surfaces naming providers differently"
            );
        }
    }

    /// Makes the `provider` string field of every recorded schema an enum of its surface's
    /// names, and gives the other fields the service checks their rules.
    pub fn apply(self, components: &mut Components) {
        for (name, providers) in self.0 {
            let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(&name) else {
                continue;
            };
            constrain_fields(&name, o);
            let Some(RefOr::T(Schema::Object(field))) = o.properties.get_mut("provider") else {
                continue;
            };
            let is_string = match &field.schema_type {
                SchemaType::Type(Type::String) => true,
                SchemaType::Array(types) => types.contains(&Type::String),
                _ => false,
            };
            if is_string {
                let mut values = providers;
                if matches!(&field.schema_type, SchemaType::Array(t) if t.contains(&Type::Null)) {
                    values.push(Value::Null);
                }
                field.enum_values = Some(values);
            }
        }
    }
}

/// Response fields the service leaves out when they have no value (`skip_serializing_if`);
/// every other field of a response schema is always present, `null` when it has no value.
const OMITTED_WHEN_EMPTY: &[(&str, &str)] = &[
    ("DetailCodeError", "field"),
    ("ErrorDetail", "field"),
    ("TestProviderResult", "error"),
];

/// The component schemas reached by responses.
fn response_schemas(api: &utoipa::openapi::OpenApi, components: &Components) -> Vec<String> {
    let mut names = Vec::new();
    for item in api.paths.paths.values() {
        let ops = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
        for op in ops.into_iter().flatten() {
            for response in op.responses.responses.values() {
                let RefOr::T(response) = response else {
                    continue;
                };
                for content in response.content.values() {
                    if let Some(schema) = &content.schema {
                        reached(schema, components, &mut names);
                    }
                }
            }
        }
    }
    names
}

/// Marks every field of the response schemas as required (they are always sent, `null` when
/// empty), except those the service leaves out when empty.
pub fn require_response_fields(api: &mut utoipa::openapi::OpenApi) {
    let Some(mut components) = api.components.take() else {
        return;
    };
    for name in response_schemas(api, &components) {
        let Some(RefOr::T(schema)) = components.schemas.get_mut(&name) else {
            continue;
        };
        let objects: Vec<&mut Object> = match schema {
            Schema::Object(o) => vec![o],
            Schema::AllOf(all) => all
                .items
                .iter_mut()
                .filter_map(|s| match s {
                    RefOr::T(Schema::Object(o)) => Some(o),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for object in objects {
            for field in object.properties.keys() {
                let omitted = OMITTED_WHEN_EMPTY.contains(&(name.as_str(), field.as_str()));
                if !omitted && !object.required.contains(field) {
                    object.required.push(field.clone());
                }
            }
        }
    }
    api.components = Some(components);
}

/// A secret as sent: not blank, no control characters, and not shaped like a mask (`...`, `***`, `…`, `•`), which is
/// refused unless it is the very mask the service handed out for the stored value.
const SECRET_PATTERN: &str =
    r"^(?![\s\S]*(?:\.\.\.|\*\*\*|\u2026|\u2022))(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+$";
/// The same where `""` is accepted too (it changes nothing).
const SECRET_OR_EMPTY_PATTERN: &str =
    r"^(?:(?![\s\S]*(?:\.\.\.|\*\*\*|\u2026|\u2022))(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+)?$";
/// A model id: 1–200 visible ASCII characters.
const MODEL_PATTERN: &str = r"^[!-~]{1,200}$";
/// The same where `""` is accepted too (it means the provider's default).
const MODEL_OR_EMPTY_PATTERN: &str = r"^[!-~]{0,200}$";
/// An endpoint: `http(s)://host[:port][/path]` in printable ASCII, no credentials, query,
/// fragment or backslash (the domain's `BaseUrl` rule).
const URL_PATTERN: &str = r#"^\s*[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?(?:/[!-"$->@-\[\]-~]*)?\s*$"#;
/// The same where `""` is accepted too (it means the provider's default).
const URL_OR_EMPTY_PATTERN: &str = r#"^(?:\s*[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?(?:/[!-"$->@-\[\]-~]*)?\s*)?$"#;
/// A user id: no control characters, no surrounding whitespace.
const USER_PATTERN: &str =
    r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$";

/// Request fields whose `""` the service accepts (it means "the default" or "no change").
const EMPTY_ACCEPTED: &[(&str, &str)] = &[
    ("ProviderEntryPatch", "apiKey"),
    ("ProviderEntryPatch", "model"),
    ("ProviderEntryPatch", "baseUrl"),
    ("TestProviderRequest", "baseUrl"),
    ("TestProviderRequest", "model"),
    ("TestProviderRequest", "apiKey"),
];

/// The rule of a request field, by its name: pattern, and the pattern where `""` is accepted.
fn field_rule(field: &str) -> Option<(&'static str, &'static str, Option<usize>)> {
    Some(match field {
        "api_key" | "apiKey" => (SECRET_PATTERN, SECRET_OR_EMPTY_PATTERN, None),
        "model" => (MODEL_PATTERN, MODEL_OR_EMPTY_PATTERN, None),
        "base_url" | "baseUrl" => (URL_PATTERN, URL_OR_EMPTY_PATTERN, Some(2048)),
        "task" => (TASK_PATTERN, TASK_PATTERN, None),
        "user" => (USER_PATTERN, USER_PATTERN, Some(MAX_ID_LEN)),
        "instance" => (
            INSTANCE_SEGMENT_PATTERN,
            INSTANCE_SEGMENT_PATTERN,
            Some(MAX_ID_LEN),
        ),
        _ => return None,
    })
}

/// Gives the fields of a request schema the rules the service checks.
fn constrain_fields(schema: &str, object: &mut Object) {
    for (field, property) in object.properties.iter_mut() {
        if let (RefOr::T(Schema::Object(map)), "credentials") = (&mut *property, field.as_str()) {
            // Secrets and settings are strings (`null` removes an optional one); only
            // `service_account_json` may also be the JSON object itself.
            let value = ObjectBuilder::new().schema_type(SchemaType::Array(vec![
                Type::String,
                Type::Object,
                Type::Null,
            ]));
            map.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(
                Schema::Object(value.build()),
            ))));
            continue;
        }
        let RefOr::T(Schema::Object(p)) = property else {
            if let RefOr::T(Schema::Array(list)) = property {
                if field == "sources" {
                    if let ArrayItems::RefOrSchema(items) = &mut list.items {
                        if let RefOr::T(Schema::Object(item)) = items.as_mut() {
                            item.enum_values =
                                Some(["user", "instance", "global"].map(Value::from).to_vec());
                        }
                    }
                }
            }
            continue;
        };
        let Some((pattern, or_empty, max)) = field_rule(field) else {
            continue;
        };
        let is_string = match &p.schema_type {
            SchemaType::Type(Type::String) => true,
            SchemaType::Array(types) => types.contains(&Type::String),
            _ => false,
        };
        if !is_string {
            continue;
        }
        let empty_ok = EMPTY_ACCEPTED.contains(&(schema, field.as_str()));
        p.pattern = Some((if empty_ok { or_empty } else { pattern }).to_owned());
        if max.is_some() {
            p.max_length = max;
        }
    }
}
