//! The domain of the LLM settings service: which provider credentials an owner holds, how they
//! are masked, which one is the default, and the use cases that read and change them.
//!
//! Everything that touches the outside world sits behind a port ([`ports`]): storage, the
//! cipher that seals secrets, the probe that tests a key against a provider, and the clock.
//! This crate depends on no database, web framework or HTTP client.

pub mod actor;
pub mod audit;
pub mod catalog;
pub mod chain;
pub mod change;
pub mod config;
pub mod document;
pub mod error;
pub mod forward;
pub mod mask;
pub mod owner;
pub mod ports;
pub mod probe;
pub mod secret;
pub mod service;
pub mod task;
pub mod values;

pub use actor::{Access, Actor, Role, Scope};
pub use audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditPage, AuditQuery, AuditRecord, AuditScope,
    CallStats,
};
pub use catalog::{Catalog, CredentialField, ProbeShape, ProviderId, ProviderSpec};
pub use chain::{ChainQuery, ChainSnapshot};
pub use change::{ChangeOutcome, ChangeStep, DocumentWrite, OwnerChange};
pub use config::{ConfigPatch, ConfigWrite, NewProviderConfig, Patch, ProviderConfig, TestRecord};
pub use error::{Error, ErrorCode, Result};
pub use forward::{
    ByteStream, ForwardFailure, ForwardPath, ForwardRequest, ForwardResponse, StreamFailure,
};
pub use mask::{MaskStyle, SecretHints};
pub use owner::{InstanceId, Owner, OwnerKind, UserId};
pub use probe::{FailureClass, ProbeOutcome, ProbeRequest};
pub use secret::{SealedSecret, SecretBinding, SecretValue, StoredSecret};
pub use service::{
    choose, ConnectionTest, ConnectionTestResult, GatewayAnswer, GatewayCall, Ports, Resolution,
    ResolveRequest, ResolvedCredential, ResolvedSource, RewrapReport, SettingsService,
    SettingsUpdate, SettingsView, UpsertOutcome, UpsertRequest, MAX_AUDIT_PAGE,
};
pub use task::{TaskAssignment, TaskName};
pub use values::{BaseUrl, ConfigId, ModelName, Timestamp};
