//! The audit trail, read back: `GET /v1/audit` (superadmins every event, admins their
//! instance's) and `GET /users/me/llm-settings/audit` (a user's own). Newest first, a page at a
//! time through an opaque cursor; errors in the native `{"detail", "error_code"}` shape.

use actix_web::get;
use actix_web::web::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::{
    AuditAction, AuditPage, AuditQuery, AuditRecord, AuditScope, InstanceId, Owner, ProviderId,
    Timestamp, UserId, MAX_AUDIT_PAGE,
};

use super::Reply;
use crate::body::Query;
use crate::caller::{Caller, Deployment, OwnUser};
use crate::error::ApiError;
use crate::surface::DetailCodeError;

/// Events in a page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 50;

/// Longest actor a filter may name.
const MAX_ACTOR_LEN: usize = 255;

/// What a cursor says before the id, so a cursor is recognisably one this API handed out.
const CURSOR_TAG: &str = "before:";

/// The routes of `/v1/audit`.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config.service(list_events);
}

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditActionName {
    Create,
    Update,
    Delete,
    SetDefault,
    Test,
    Decrypt,
    Rewrap,
    TaskAssignments,
    DocumentUpdate,
    Resolve,
    Gateway,
}

impl From<AuditAction> for AuditActionName {
    fn from(action: AuditAction) -> Self {
        match action {
            AuditAction::Create => Self::Create,
            AuditAction::Update => Self::Update,
            AuditAction::Delete => Self::Delete,
            AuditAction::SetDefault => Self::SetDefault,
            AuditAction::Test => Self::Test,
            AuditAction::Decrypt => Self::Decrypt,
            AuditAction::Rewrap => Self::Rewrap,
            AuditAction::TaskAssignments => Self::TaskAssignments,
            AuditAction::DocumentUpdate => Self::DocumentUpdate,
            AuditAction::Resolve => Self::Resolve,
            AuditAction::Gateway => Self::Gateway,
        }
    }
}

/// The figures of a call made with a credential (gateway calls, connection tests).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditCall {
    #[schema(example = 420)]
    pub latency_ms: u64,
    /// The provider's HTTP status, when it answered.
    #[schema(example = 200)]
    pub upstream_status: Option<u16>,
    /// Bytes of the request body sent to the provider.
    pub request_bytes: u64,
    /// Bytes of the answer sent back to the client.
    pub response_bytes: u64,
}

/// One audit event. It never holds a secret, a request body or a token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 812, "at": "2025-01-05T10:00:00.123456Z", "actor": "auth0|alice", "on_behalf_of": null, "instance": null, "owner": "user:auth0|alice", "provider": "anthropic", "config_id": 12, "action": "update", "outcome": "success", "call": null}))]
pub struct AuditEventBody {
    /// Grows with every event.
    pub id: i64,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
    /// The token subject that acted, or a system actor such as `system:rewrap`.
    pub actor: String,
    /// The user a service acted for.
    pub on_behalf_of: Option<String>,
    /// The tenant instance the call was made in.
    pub instance: Option<String>,
    /// Whose settings were read or changed (for resolutions and gateway calls, whose
    /// credential was used): `global`, `instance:ID` or `user:ID`.
    pub owner: String,
    /// The provider's catalog id.
    pub provider: Option<String>,
    pub config_id: Option<i64>,
    pub action: AuditActionName,
    /// `success`, or the error or failure class (`invalid_credentials`, `not_found` …).
    pub outcome: String,
    pub call: Option<AuditCall>,
}

impl From<AuditRecord> for AuditEventBody {
    fn from(record: AuditRecord) -> Self {
        let e = record.event;
        Self {
            id: record.id,
            at: e.at.to_rfc3339(),
            actor: e.actor,
            on_behalf_of: e.on_behalf_of.map(|u| u.to_string()),
            instance: e.instance.map(|i| i.to_string()),
            owner: e.owner.to_string(),
            provider: e.provider.map(|p| p.as_str().to_owned()),
            config_id: e.config_id.map(|c| c.0),
            action: e.action.into(),
            outcome: e.outcome.as_str().to_owned(),
            call: e.call.map(|c| AuditCall {
                latency_ms: c.latency_ms,
                upstream_status: c.upstream_status,
                request_bytes: c.request_bytes,
                response_bytes: c.response_bytes,
            }),
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventPage {
    pub events: Vec<AuditEventBody>,
    /// Pass as `cursor` to read the next (older) page; `null` on the last page.
    #[schema(example = "YmVmb3JlOjgxMg")]
    pub next_cursor: Option<String>,
}

impl From<AuditPage> for AuditEventPage {
    fn from(page: AuditPage) -> Self {
        Self {
            events: page.records.into_iter().map(Into::into).collect(),
            next_cursor: page.next_before_id.map(cursor_of),
        }
    }
}

/// Filters and page of `GET /v1/audit`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilters {
    /// Only events on this owner: `global`, `instance:ID` or `user:ID`.
    pub owner: Option<String>,
    /// Only events of this actor (a token subject or `system:…`).
    pub actor: Option<String>,
    /// Only this action.
    #[param(value_type = Option<AuditActionName>)]
    pub action: Option<String>,
    /// Only events about this provider (catalog id or alias).
    pub provider: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. `2025-01-05T10:00:00Z`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Events per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<String>,
}

/// Filters and page of `GET /users/me/llm-settings/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyAuditFilters {
    /// Only this action.
    #[param(value_type = Option<AuditActionName>)]
    pub action: Option<String>,
    /// Only events about this provider (catalog id or alias).
    pub provider: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. `2025-01-05T10:00:00Z`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Events per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<String>,
}

impl From<MyAuditFilters> for AuditFilters {
    fn from(f: MyAuditFilters) -> Self {
        Self {
            action: f.action,
            provider: f.provider,
            since: f.since,
            until: f.until,
            cursor: f.cursor,
            limit: f.limit,
            ..Self::default()
        }
    }
}

impl AuditFilters {
    /// The domain query these filters ask for; each bad value is a 400 naming its parameter
    /// (the value itself is not repeated).
    pub fn query(self) -> Result<AuditQuery, ApiError> {
        let limit = match self.limit {
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_AUDIT_PAGE).contains(n))
                .ok_or_else(|| {
                    invalid("limit", format!("limit must be from 1 to {MAX_AUDIT_PAGE}"))
                })?,
            None => DEFAULT_PAGE,
        };
        Ok(AuditQuery {
            owner: self.owner.as_deref().map(owner).transpose()?,
            actor: self.actor.map(actor).transpose()?,
            action: self.action.as_deref().map(action).transpose()?,
            provider: self.provider.as_deref().map(provider).transpose()?,
            since: self
                .since
                .as_deref()
                .map(|t| time("since", t))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| time("until", t))
                .transpose()?,
            before_id: self.cursor.as_deref().map(before_id).transpose()?,
            ..AuditQuery::newest(AuditScope::All, limit)
        })
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(message).with_field(field)
}

fn owner(raw: &str) -> Result<Owner, ApiError> {
    let parsed = match raw.split_once(':') {
        None if raw == "global" => Some(Owner::Global),
        Some(("instance", id)) => InstanceId::parse(id).ok().map(Owner::Instance),
        Some(("user", id)) => UserId::parse(id).ok().map(Owner::User),
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(
            "owner",
            "owner must be `global`, `instance:ID` or `user:ID` with a valid id",
        )
    })
}

fn actor(raw: String) -> Result<String, ApiError> {
    if raw.is_empty() || raw.len() > MAX_ACTOR_LEN || raw.chars().any(char::is_control) {
        return Err(invalid(
            "actor",
            format!("actor must be 1 to {MAX_ACTOR_LEN} characters without control characters"),
        ));
    }
    Ok(raw)
}

fn action(raw: &str) -> Result<AuditAction, ApiError> {
    AuditAction::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = AuditAction::ALL.iter().map(AuditAction::as_str).collect();
        invalid(
            "action",
            format!("unknown action; expected one of {}", names.join(", ")),
        )
    })
}

fn provider(raw: &str) -> Result<ProviderId, ApiError> {
    ProviderId::lookup(raw).ok_or_else(|| {
        invalid(
            "provider",
            format!(
                "unknown provider {}; expected a catalog id such as openai or anthropic",
                llm_settings_domain::error::shown(raw)
            ),
        )
    })
}

/// An RFC 3339 time; a `+` of the offset that reached us as a space (unencoded in the query
/// string) is read as the `+` it was.
fn time(field: &str, raw: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(&raw.replace(' ', "+")).map_err(|_| {
        invalid(
            field,
            format!("{field} must be an RFC 3339 time such as 2025-01-05T10:00:00Z"),
        )
    })
}

/// The cursor that reads the events before `id`.
fn cursor_of(id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_TAG}{id}"))
}

fn before_id(cursor: &str) -> Result<i64, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_TAG)?.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            invalid(
                "cursor",
                "cursor is not one this API handed out; pass a page's next_cursor unchanged, or omit it for the newest events",
            )
        })
}

/// Audit events, newest first (role `superadmin`, or `admin` with an `instance` claim; scope
/// `read`).
///
/// A superadmin reads every event and may filter by owner, actor, action, provider and time;
/// an admin reads the events on its instance's settings and the calls made in its instance,
/// whatever the filters say. Each change, connection test, decryption, resolution and gateway
/// call is one event; events older than `LLM_SETTINGS_AUDIT_RETENTION_DAYS` are pruned.
#[utoipa::path(params(AuditFilters), responses((status = 200, description = "A page of events, newest first", body = AuditEventPage), (status = 400, description = "A malformed filter, limit or cursor (the parameter is named in `field`)", body = DetailCodeError)))]
#[get("")]
async fn list_events(c: Caller<Deployment>, filters: Query<AuditFilters>) -> Reply<AuditEventPage> {
    let query = filters.into_inner().query()?;
    let page = c.service().audit_events(&c.actor, query).await?;
    Ok(Json(page.into()))
}

/// The caller's own audit events, newest first (scope `read`): changes to their settings and
/// the resolutions and gateway calls made on their behalf.
#[utoipa::path(params(MyAuditFilters), responses((status = 200, description = "A page of the caller's events, newest first", body = AuditEventPage), (status = 400, description = "A malformed filter, limit or cursor (the parameter is named in `field`)", body = DetailCodeError)))]
#[get("/audit")]
pub async fn audit_events(
    c: Caller<OwnUser>,
    filters: Query<MyAuditFilters>,
) -> Reply<AuditEventPage> {
    let query = AuditFilters::from(filters.into_inner()).query()?;
    let page = c.service().my_audit_events(&c.actor, query).await?;
    Ok(Json(page.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_as_the_filter_takes_them() {
        for action in AuditAction::ALL {
            let wire = serde_json::to_value(AuditActionName::from(action)).unwrap();
            assert_eq!(wire, action.as_str());
        }
    }

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        assert_eq!(before_id(&cursor_of(812)).unwrap(), 812);
        for bad in ["", "812", "!!", &cursor_of(0), &cursor_of(-4)] {
            let err = before_id(bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("cursor"), "{bad}");
        }
    }

    #[test]
    fn each_bad_filter_is_named() {
        type Spoil = fn(&mut AuditFilters);
        let cases: [(&str, Spoil); 7] = [
            ("owner", |f| f.owner = Some("team:x".into())),
            ("actor", |f| f.actor = Some(String::new())),
            ("action", |f| f.action = Some("explode".into())),
            ("provider", |f| f.provider = Some("nope".into())),
            ("since", |f| f.since = Some("yesterday".into())),
            ("until", |f| f.until = Some("2025-13-01T00:00:00Z".into())),
            ("limit", |f| f.limit = Some("501".into())),
        ];
        for (field, spoil) in cases {
            let mut filters = AuditFilters::default();
            spoil(&mut filters);
            let err = filters.query().unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field));
            assert_eq!(err.status().as_u16(), 400);
        }
        let ok = AuditFilters {
            owner: Some("user:auth0|a:b".into()),
            since: Some("2025-01-05T10:00:00 01:00".into()),
            ..AuditFilters::default()
        }
        .query()
        .unwrap();
        assert_eq!(
            ok.owner,
            Some(Owner::User(UserId::parse("auth0|a:b").unwrap()))
        );
        assert_eq!(ok.limit, DEFAULT_PAGE);
        assert_eq!(
            ok.since.unwrap().to_rfc3339(),
            "2025-01-05T09:00:00Z",
            "an offset's `+` that arrived as a space"
        );
    }
}
