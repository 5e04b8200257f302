//! Pulumi Deployments (issue 21): remote operations run for a stack on the service's side.
//! Each stack's deployment settings ([`settings`]) with their sealed secrets ([`secret`]);
//! runs ([`runs`]), started from a queue ([`dispatch`]) by a runner given a
//! [`spec::RunSpec`], which reports back ([`report`]); schedules of runs ([`schedules`]) made
//! into runs by [`scheduler`].
//!
//! (`service::deployments` is another thing: a stack's checkpoint, which Pulumi also calls
//! its deployment.)

use serde::{Deserialize, Serialize};

pub mod cron;
pub mod dispatch;
pub mod drift;
mod notify;
pub mod report;
pub mod runs;
pub mod scheduler;
pub mod schedules;
pub mod secret;
pub mod settings;
pub mod spec;

use crate::error::Result;
use crate::ports::{MetadataStore, TransactOp};

/// The writes that move stack `stack_id`'s schedules and queued runs to its new names, for a
/// rename's own transaction (both find their stack by name). Refused (409) while one of the
/// stack's runs is running, as a rename is while an update runs: its runner has the old names.
pub(crate) async fn renamed_ops(
    meta: &dyn MetadataStore,
    stack_id: &str,
    project: &str,
    stack: &str,
) -> Result<Vec<TransactOp>> {
    let mut ops = runs::renamed_ops(meta, stack_id, project, stack).await?;
    ops.extend(schedules::renamed_ops(meta, stack_id, project, stack).await?);
    Ok(ops)
}

/// `PulumiOperation`: what a deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum Operation {
    /// `pulumi up`.
    Update,
    Preview,
    Destroy,
    Refresh,
    /// A refresh preview that records drift.
    DetectDrift,
    /// `pulumi up` after a drift run found drift.
    RemediateDrift,
}
