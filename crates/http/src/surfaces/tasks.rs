//! Task assignments on the wire (`{task, provider, model}`), shared by the provider keys API
//! (the deployment's) and the native API (a user's or an instance's).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use llm_settings_domain::{Catalog, ModelName, TaskAssignment, TaskName};

use crate::error::ApiError;
use crate::naming::{Naming, ProviderNames};

/// One task → provider + model mapping.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskAssignmentItem {
    /// Task name: 1–64 of `A-Z a-z 0-9 _ - . :`.
    #[schema(example = "summarize")]
    pub task: String,
    /// A provider of the API.
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = "claude-sonnet-4-5")]
    pub model: String,
}

/// Assignments to save; each replaces the one with the same task, others are kept. A task may
/// appear once (a second one is refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskAssignmentsRequest {
    pub assignments: Vec<TaskAssignmentItem>,
}

/// One task → provider + model mapping of the deployment, providers named as the provider keys
/// API names them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentTaskAssignment {
    /// Task name: 1–64 of `A-Z a-z 0-9 _ - . :`.
    #[schema(example = "summarize")]
    pub task: String,
    /// openai, gemini, anthropic, openrouter or ollama.
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = "claude-sonnet-4-5")]
    pub model: String,
}

impl From<DeploymentTaskAssignment> for TaskAssignmentItem {
    fn from(a: DeploymentTaskAssignment) -> Self {
        Self {
            task: a.task,
            provider: a.provider,
            model: a.model,
        }
    }
}

/// The deployment's assignments to save; each replaces the one with the same task, others are
/// kept. A task may appear once (a second one is refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentTaskAssignmentsRequest {
    pub assignments: Vec<DeploymentTaskAssignment>,
}

/// Every task assignment, ordered by task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskAssignmentsResponse {
    pub assignments: Vec<TaskAssignmentItem>,
}

impl TaskAssignmentsResponse {
    /// The assignments with providers named as the API names them.
    pub fn of(assignments: Vec<TaskAssignment>, names: &Naming) -> Self {
        let item = |a: TaskAssignment| TaskAssignmentItem {
            task: a.task.to_string(),
            provider: names.wire_name(a.provider).to_owned(),
            model: a.model.to_string(),
        };
        Self {
            assignments: assignments.into_iter().map(item).collect(),
        }
    }
}

/// The items of a save request as domain assignments, each checked; a task given twice is
/// refused at its second place.
pub fn assignments(
    catalog: &Catalog,
    names: &Naming,
    items: Vec<TaskAssignmentItem>,
) -> Result<Vec<TaskAssignment>, ApiError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = |field: &str| format!("assignments[{i}].{field}");
        let task = TaskName::parse(item.task)
            .map_err(|e| ApiError::invalid_field(at("task"), e.to_string()))?;
        if !seen.insert(task.clone()) {
            return Err(ApiError::invalid_field(
                at("task"),
                format!("task {task} is assigned twice"),
            ));
        }
        let provider = names.provider(catalog, &item.provider).map_err(|_| {
            let known = names.known_names(catalog);
            ApiError::invalid_field(at("provider"), format!("provider must be one of: {known}"))
        })?;
        let model = ModelName::parse(item.model)
            .map_err(|e| ApiError::invalid_field(at("model"), e.to_string()))?;
        out.push(TaskAssignment {
            task,
            provider,
            model,
        });
    }
    Ok(out)
}
