//! Drift detection results (Pulumi Cloud's `StackDriftStatus` and `DriftRun`) under
//! `/api/stacks/{org}/{project}/{stack}/drift`: a drift run is a `detect-drift` deployment run.

use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::deploy::drift;
use crate::service::deploy::runs::{self, Run, Status};
use crate::service::deploy::Operation;

/// `StackDriftStatus`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct DriftStatus {
    drift_detected: bool,
    /// The newest drift run's id ("" when none).
    latest_drift_run: String,
    run_in_progress: bool,
}

/// The stack's drift status (also `drift` of `…/deployments/metadata`).
pub(crate) async fn status_of(ctx: &Ctx, stack_id: &str) -> Result<DriftStatus> {
    let s = drift::status(ctx.app.ports.meta.as_ref(), stack_id).await?;
    Ok(DriftStatus {
        drift_detected: s.detected,
        latest_drift_run: s.latest,
        run_in_progress: s.in_progress,
    })
}

/// `GET …/drift/status`.
pub async fn status(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    Reply::json(&status_of(&ctx, stack.id.as_str()).await?)
}

/// `DriftRunUpdate`: one phase's update.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PhaseUpdate {
    update_id: String,
    resource_changes: Map<String, Json>,
    modified: String,
    status: Status,
}

/// `DriftRun`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct DriftRun {
    id: String,
    drift_detected: bool,
    created: String,
    status: Status,
    deployment_id: String,
    deployment_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    detect_update: Option<PhaseUpdate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remediate_update: Option<PhaseUpdate>,
}

fn time(secs: i64) -> String {
    crate::service::environments::rfc3339(secs)
}

async fn view(ctx: &Ctx, run: &Run) -> Result<DriftRun> {
    let meta = ctx.app.ports.meta.as_ref();
    let detect_update = run.drift.as_ref().and_then(|f| {
        f.update.as_ref().map(|u| PhaseUpdate {
            update_id: u.clone(),
            resource_changes: f.changes(),
            modified: time(run.modified),
            status: run.status,
        })
    });
    let remediate_update = match &run.remediation {
        None => None,
        Some(id) => match runs::get(meta, id).await {
            Ok(fix) => {
                let made = runs::made(meta, &fix).await?;
                let last = made.iter().rev().find(|u| !u.dry_run);
                Some(PhaseUpdate {
                    update_id: last.map(|u| u.id.to_string()).unwrap_or_default(),
                    resource_changes: last
                        .and_then(|u| u.resource_changes.as_deref())
                        .and_then(|c| serde_json::from_str(c).ok())
                        .unwrap_or_default(),
                    modified: time(fix.modified),
                    status: fix.status,
                })
            }
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
    };
    Ok(DriftRun {
        id: run.id.clone(),
        drift_detected: run.drift.as_ref().is_some_and(|f| f.detected),
        created: time(run.created),
        status: run.status,
        deployment_id: run.id.clone(),
        deployment_version: run.version,
        detect_update,
        remediate_update,
    })
}

/// `ListDriftRunsResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct DriftRuns {
    drift_runs: Vec<DriftRun>,
    items_per_page: usize,
    total: usize,
}

/// `GET …/drift/runs?page=&pageSize=`: newest first.
pub async fn runs(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let (page, size, _) = super::deploy::paging(&ctx)?;
    let all = drift::runs_of(ctx.app.ports.meta.as_ref(), stack.id.as_str()).await?;
    let mut drift_runs = Vec::new();
    for run in all.iter().skip((page - 1) * size).take(size) {
        drift_runs.push(view(&ctx, run).await?);
    }
    Reply::json(&DriftRuns { drift_runs, items_per_page: size, total: all.len() })
}

/// `GET …/drift/runs/{deployment}`: 404 for a run that is not a drift run of this stack.
pub async fn run(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let id = ctx.param("deployment")?;
    let run = runs::get_of(ctx.app.ports.meta.as_ref(), &stack, id).await?;
    if run.operation != Operation::DetectDrift {
        return Err(Error::NotFound(format!("drift run {id} not found")));
    }
    Reply::json(&view(&ctx, &run).await?)
}
