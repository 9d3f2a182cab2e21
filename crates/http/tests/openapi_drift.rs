//! The committed OpenAPI document must equal the one generated from the handlers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

const REGENERATE: &str =
    "cargo run -q --bin llm-settings -- openapi > openapi/openapi.json   (or LLM_SETTINGS_UPDATE_OPENAPI=1 cargo test -p llm-settings-http --test openapi_drift)";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json")
}

#[test]
fn committed_openapi_matches_the_handlers() {
    let generated = llm_settings_http::openapi().to_pretty_json().unwrap() + "\n";
    let path = committed_path();
    if std::env::var_os("LLM_SETTINGS_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; regenerate it with: {REGENERATE}",
            path.display()
        )
    });
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the handlers; regenerate it with: {REGENERATE}"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_security() {
    let doc: serde_json::Value =
        serde_json::from_str(&llm_settings_http::openapi().to_pretty_json().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(
                ids.insert(id.clone()),
                "operationId {id} of {method} {path} is not unique"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has no tag"
            );
        }
    }
}

#[test]
fn every_surface_is_one_tag_of_the_document() {
    let doc: serde_json::Value =
        serde_json::from_str(&llm_settings_http::openapi().to_pretty_json().unwrap()).unwrap();
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for surface in llm_settings_http::SURFACES {
        assert!(tags.contains(&surface.tag), "{} is declared", surface.tag);
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        let surface = llm_settings_http::Surface::of_path(path);
        for (method, op) in item.as_object().unwrap() {
            assert_eq!(
                op["tags"],
                serde_json::json!([surface.tag]),
                "{method} {path}"
            );
            let secured = !op["security"].is_null();
            assert_eq!(secured, !surface.prefix.is_empty(), "{method} {path}");
            if secured {
                assert!(op["responses"]["401"].is_object(), "{method} {path}: 401");
            }
            if !op["requestBody"].is_null() {
                for status in ["413", "415"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
    let loc = &doc["components"]["schemas"]["LocItem"];
    assert!(
        loc.to_string().contains("integer") && loc.to_string().contains("string"),
        "{loc}"
    );
}
