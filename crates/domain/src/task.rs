//! Task assignments: which provider and model an owner uses for a named task.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::ProviderId;
use crate::error::{Error, Result};
use crate::values::ModelName;

/// A task name such as `summarize` or `pipeline.classify`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskName(String);

impl TaskName {
    /// Longest accepted task name.
    pub const MAX_LEN: usize = 64;

    /// Accepts 1–64 characters of `A-Z a-z 0-9 _ - . :`.
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() {
            return Err(Error::invalid("task", "task must not be empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "task",
                format!("task must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        {
            return Err(Error::invalid(
                "task",
                "task may only contain letters, digits, '_', '-', '.' and ':'",
            ));
        }
        Ok(Self(value))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TaskName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// One task → provider + model mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAssignment {
    pub task: TaskName,
    pub provider: ProviderId,
    pub model: ModelName,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names() {
        assert!(TaskName::parse("pipeline.classify").is_ok());
        assert!(TaskName::parse("").is_err());
        assert!(TaskName::parse("has space").is_err());
        assert!(TaskName::parse("x".repeat(65)).is_err());
    }
}
