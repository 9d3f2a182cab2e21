//! Task assignments: task name → provider + model, per owner.

use std::collections::BTreeSet;

use super::SettingsService;
use crate::actor::{Access, Actor};
use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::task::{TaskAssignment, TaskName};

/// Most assignments accepted in one request.
pub const MAX_ASSIGNMENTS: usize = 200;

impl SettingsService {
    /// The owner's assignments ordered by task.
    pub async fn task_assignments(
        &self,
        actor: &Actor,
        owner: &Owner,
    ) -> Result<Vec<TaskAssignment>> {
        actor.authorize(owner, Access::Read)?;
        self.ports.tasks.list(owner).await
    }

    /// Saves assignments (each replaces the one with the same task) and returns all of them.
    pub async fn save_task_assignments(
        &self,
        actor: &Actor,
        owner: &Owner,
        assignments: Vec<TaskAssignment>,
    ) -> Result<Vec<TaskAssignment>> {
        actor.authorize(owner, Access::Write)?;
        if assignments.len() > MAX_ASSIGNMENTS {
            return Err(Error::invalid(
                "assignments",
                format!("at most {MAX_ASSIGNMENTS} assignments per request"),
            ));
        }
        let mut seen = BTreeSet::new();
        for a in &assignments {
            self.catalog.ensure_offered(a.provider)?;
            if !seen.insert(a.task.as_str()) {
                return Err(Error::invalid(
                    "task",
                    format!("task {} is assigned twice", a.task),
                ));
            }
        }
        let now = self.ports.clock.now();
        let result = self.ports.tasks.upsert(owner, assignments, now).await;
        self.audited(
            actor,
            owner,
            None,
            AuditAction::TaskAssignments,
            result,
            |_| None,
        )
        .await?;
        self.ports.tasks.list(owner).await
    }

    /// Removes the owner's assignment of `task`; `NotFound` when there is none.
    pub async fn delete_task_assignment(
        &self,
        actor: &Actor,
        owner: &Owner,
        task: &TaskName,
    ) -> Result<()> {
        actor.authorize(owner, Access::Write)?;
        let result = match self.ports.tasks.delete(owner, task).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::NotFound(format!("task assignment {task}"))),
            Err(err) => Err(err),
        };
        self.audited(
            actor,
            owner,
            None,
            AuditAction::TaskAssignments,
            result,
            |_| None,
        )
        .await
    }
}
