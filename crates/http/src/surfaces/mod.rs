//! One module per API surface; all of them call the same domain service.

pub mod admin;
pub mod app_settings;
pub mod audit;
pub mod credentials;
pub mod gateway;
pub mod native;
pub mod provider_config;
pub mod provider_keys;
pub mod tasks;

use actix_web::HttpRequest;
use serde::{Deserialize, Deserializer};

use llm_settings_domain::{ConfigId, Error as DomainError, Patch};

use crate::caller::FromSegment;
use crate::error::ApiError;

/// A handler's JSON answer.
pub type Reply<T> = Result<actix_web::web::Json<T>, ApiError>;

/// A handler's answer with its own status (201, 204).
pub type Answer = Result<actix_web::HttpResponse, ApiError>;

/// Deserializes a field that distinguishes absent (`None`), `null` (`Some(None)`) and a value.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An optional, nullable field as a domain patch, each value checked by `parse`.
pub fn patch<T, U>(
    value: Option<Option<T>>,
    parse: impl FnOnce(T) -> Result<U, DomainError>,
) -> Result<Patch<U>, ApiError> {
    Ok(Patch::from(
        value.map(|v| v.map(parse).transpose()).transpose()?,
    ))
}

impl FromSegment for ConfigId {
    const NAME: &'static str = "config_id";

    fn from_segment(req: &HttpRequest, segment: &str) -> Result<Self, ApiError> {
        config_id(segment).map_err(|not_found| {
            crate::service_routes::method_not_allowed(req).unwrap_or(not_found)
        })
    }
}

/// Parses a config id from a path; anything that is not an id is simply not found.
pub fn config_id(raw: &str) -> Result<ConfigId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(ConfigId)
        .ok_or_else(|| {
            // Only digits are repeated: a key pasted into the path must not come back.
            let shown =
                if !raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit()) {
                    format!("config {raw}")
                } else {
                    "config".to_owned()
                };
            DomainError::NotFound(shown).into()
        })
}

/// A request path as it may appear in a log line or an error: a segment that does not look
/// like an identifier is replaced, so a key pasted into a URL is never repeated.
pub fn shown_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.is_empty() || llm_settings_domain::error::is_repeatable(segment) {
                segment
            } else {
                "(not shown)"
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_ids_that_are_not_ids_are_not_repeated() {
        let err = config_id("sk-proj-pasted-key-0123").unwrap_err();
        assert_eq!(err.message, "config not found");
        let err = config_id("0").unwrap_err();
        assert_eq!(err.message, "config 0 not found");
        assert_eq!(config_id("12").unwrap(), ConfigId(12));
    }

    #[test]
    fn paths_keep_identifiers_and_hide_anything_else() {
        assert_eq!(
            shown_path("/users/me/llm-settings/12/set-default"),
            "/users/me/llm-settings/12/set-default"
        );
        assert_eq!(shown_path("/llm-config/"), "/llm-config/");
        assert_eq!(
            shown_path("/api/v1/settings/providers/sk-proj-0123456789abcdefghijklmnopqrstuv/test"),
            "/api/v1/settings/providers/(not shown)/test"
        );
        assert_eq!(
            shown_path("/v1/llm-provider/a%20b"),
            "/v1/llm-provider/(not shown)"
        );
    }
}
