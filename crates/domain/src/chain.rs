//! The owners a call on behalf of a user walks (`user → instance → global`), and what the
//! store returns for them in one read.

use crate::catalog::ProviderId;
use crate::config::ProviderConfig;
use crate::owner::Owner;
use crate::task::{TaskAssignment, TaskName};

/// What to load for a resolution: the chain's owners, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainQuery {
    /// One to three owners, each at most once.
    pub owners: Vec<Owner>,
    /// Only configs of this provider, when the caller named one.
    pub provider: Option<ProviderId>,
    /// The task whose assignments to load, when the caller named one.
    pub task: Option<TaskName>,
}

/// The chain's state, read in one query or one read-only transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainSnapshot {
    /// The ENABLED configs of the chain's owners (of `provider` only, when given), with
    /// their sealed secrets; in any order.
    pub configs: Vec<ProviderConfig>,
    /// The assignments of `task` on the chain's owners (empty without a task); in any order.
    pub assignments: Vec<(Owner, TaskAssignment)>,
}
