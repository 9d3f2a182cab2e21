//! The per-owner settings document of the application settings API: generation defaults
//! (`ai.systemPrompt`, `ai.temperature` …) and free-form sections (`stt`, `general`,
//! `onboarding`, anything else). Credentials never live here: `ai.provider` and `ai.providers`
//! are provider configs and are refused in a document.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Largest accepted document, serialized.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Keys under `ai` that belong to provider configs, not to the document.
pub const CREDENTIAL_KEYS: [&str; 2] = ["provider", "providers"];

/// A stored document with its version for optimistic concurrency.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    pub document: Value,
    pub version: i64,
}

/// Values shown for known fields that the owner never set.
pub fn defaults() -> Value {
    json!({
        "ai": {
            "systemPrompt": "You are a helpful assistant.",
            "temperature": 0.7,
            "maxTokens": 4096,
            "thinkingEnabled": false,
            "planMode": false
        },
        "stt": {},
        "general": {},
        "onboarding": { "completed": false }
    })
}

/// The document as shown: defaults overlaid with what the owner stored.
pub fn effective(stored: Option<&Value>) -> Value {
    let mut doc = defaults();
    if let Some(stored) = stored {
        json_patch::merge(&mut doc, stored);
    }
    doc
}

fn object<'a>(doc: &'a Value, path: &str) -> Result<Option<&'a Map<String, Value>>> {
    match doc {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(Error::invalid(path, format!("{path} must be an object"))),
    }
}

fn check_field(path: &str, value: &Value) -> Result<()> {
    if value.is_null() {
        return Ok(());
    }
    let (ok, expected) = match path {
        "ai.systemPrompt" | "stt.activeModel" | "general.theme" | "general.language" => {
            (value.is_string(), "a string")
        }
        "ai.temperature" => (
            value.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)),
            "a number from 0 to 2",
        ),
        "ai.maxTokens" | "stt.sampleRate" => (
            value.as_u64().is_some_and(|n| n > 0 && n <= 10_000_000),
            "a positive integer",
        ),
        "ai.thinkingEnabled" | "ai.planMode" | "onboarding.completed" => {
            (value.is_boolean(), "true or false")
        }
        _ => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(path, format!("{path} must be {expected}")))
    }
}

/// The path of the first string or key holding a NUL character (no store can keep one).
fn nul_path(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(v, &here)
            }
        }),
        _ => None,
    }
}

/// Checks the types of known fields, refuses credential keys and oversized documents.
/// Used for both patches and merged results; `null` (a removal) is always accepted.
pub fn validate(doc: &Value) -> Result<()> {
    let Some(root) = object(doc, "settings")? else {
        return Ok(());
    };
    if let Some(path) = nul_path(doc, "") {
        return Err(Error::invalid(
            path.clone(),
            format!("{path} must not contain NUL characters"),
        ));
    }
    for (section, value) in root {
        if matches!(section.as_str(), "ai" | "stt" | "general" | "onboarding") {
            let Some(fields) = object(value, section)? else {
                continue;
            };
            for (key, value) in fields {
                if section == "ai" && CREDENTIAL_KEYS.contains(&key.as_str()) {
                    return Err(Error::invalid(
                        format!("ai.{key}"),
                        "provider credentials are provider configs, not document fields",
                    ));
                }
                check_field(&format!("{section}.{key}"), value)?;
            }
        }
    }
    let size = serde_json::to_vec(doc)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(
            "settings",
            format!("the settings document must be at most {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fields_are_type_checked() {
        assert!(validate(&json!({"ai": {"temperature": 0.9, "maxTokens": 10}})).is_ok());
        for (doc, field) in [
            (json!({"ai": {"temperature": 2.5}}), "ai.temperature"),
            (json!({"ai": {"temperature": "hot"}}), "ai.temperature"),
            (json!({"ai": {"maxTokens": 0}}), "ai.maxTokens"),
            (json!({"ai": {"maxTokens": -5}}), "ai.maxTokens"),
            (
                json!({"ai": {"thinkingEnabled": "yes"}}),
                "ai.thinkingEnabled",
            ),
            (json!({"ai": {"systemPrompt": 1}}), "ai.systemPrompt"),
            (json!({"ai": []}), "ai"),
            (json!({"stt": {"sampleRate": 1.5}}), "stt.sampleRate"),
            (
                json!({"onboarding": {"completed": 1}}),
                "onboarding.completed",
            ),
            (json!({"ai": {"providers": {}}}), "ai.providers"),
            (json!({"general": {"theme": "da\u{0}rk"}}), "general.theme"),
            (json!({"custom": [{"x": "\u{0}"}]}), "custom[0].x"),
            (json!([1, 2]), "settings"),
        ] {
            assert_eq!(validate(&doc).unwrap_err().field(), Some(field), "{doc}");
        }
        assert!(validate(&json!({"anything": [1, "x"], "ai": {"temperature": null}})).is_ok());
    }

    #[test]
    fn oversized_documents_are_refused() {
        let big = json!({"general": {"notes": "x".repeat(MAX_DOCUMENT_BYTES)}});
        assert!(validate(&big).is_err());
    }

    #[test]
    fn effective_overlays_defaults() {
        let doc = effective(Some(&json!({"ai": {"temperature": 1.0}})));
        assert_eq!(doc["ai"]["temperature"], json!(1.0));
        assert_eq!(doc["ai"]["maxTokens"], json!(4096));
        assert_eq!(doc["onboarding"]["completed"], json!(false));
    }
}
