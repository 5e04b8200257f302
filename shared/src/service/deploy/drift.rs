//! Drift detection: a `detect-drift` run runs a refresh preview (`pulumi refresh
//! --preview-only`); when it succeeds, the resource changes that preview reported — the update
//! the run's token made, recorded with the run — say whether the stack drifted (anything but
//! `same`). With `operationContext.options.remediateIfDriftDetected` a drift starts a
//! `remediate-drift` run (`pulumi up`). Pulumi Cloud's `DriftRun` is such a run.

use serde_json::{Map, Value as Json};

use super::runs::{self, Run, Status};
use super::Operation;
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Update, Value};

/// What a drift run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub detected: bool,
    /// The refresh preview's update.
    pub update: Option<String>,
    /// Its resource changes by operation (`{"same": 3, "update": 1}`), as JSON.
    pub changes: String,
}

impl Found {
    pub(super) fn write(&self, item: &mut Item) {
        item.set("drift_detected", Value::Bool(self.detected));
        item.set("drift_changes", Value::S(self.changes.clone()));
        if let Some(u) = &self.update {
            item.set("drift_update", Value::S(u.clone()));
        }
    }

    pub(super) fn read(item: &Item) -> Option<Found> {
        Some(Found {
            detected: item.bool("drift_detected")?,
            update: item.s("drift_update").map(str::to_string),
            changes: item.s("drift_changes").unwrap_or("{}").to_string(),
        })
    }

    /// The changes as a map.
    pub fn changes(&self) -> Map<String, Json> {
        serde_json::from_str(&self.changes).unwrap_or_default()
    }
}

/// Whether resource changes are drift: any operation but `same` with a count.
pub fn is_drift(changes: &Map<String, Json>) -> bool {
    changes.iter().any(|(op, n)| op != "same" && n.as_i64().unwrap_or(0) > 0)
}

/// What `run` (a `detect-drift` run that succeeded) found, from the refresh preview it made.
pub(super) async fn evaluate(meta: &dyn MetadataStore, run: &Run) -> Result<Found> {
    let made = runs::made(meta, run).await?;
    let preview = made.iter().rev().find(|u| u.kind == "refresh").or(made.last());
    let changes: Map<String, Json> = preview
        .and_then(|u| u.resource_changes.as_deref())
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    Ok(Found {
        detected: is_drift(&changes),
        update: preview.map(|u| u.id.to_string()),
        changes: Json::Object(changes).to_string(),
    })
}

/// After `run` (a drift run, ended) found drift: starts its `remediate-drift` run when its
/// settings ask for one, and records it on the drift run.
pub(super) async fn remediate(app: &App, run: &Run) -> Result<()> {
    let wanted = run.drift.as_ref().is_some_and(|f| f.detected)
        && run
            .settings()?
            .operation_context
            .and_then(|o| o.options)
            .and_then(|o| o.remediate_if_drift_detected)
            .unwrap_or(false);
    if !wanted || run.remediation.is_some() {
        return Ok(());
    }
    let meta = app.ports.meta.as_ref();
    let Some(stack) =
        runs::stack_of(meta, &run.org, &run.project, &run.stack, &run.stack_id).await?
    else {
        return Ok(());
    };
    let op = Operation::RemediateDrift;
    let made =
        runs::insert(app, &stack, &run.requester, &run.requested_by, op, &run.settings, |_| vec![])
            .await?;
    let Some(fix) = made else {
        return Err(Error::Conflict("the stack is busy; the remediation was not started".into()));
    };
    runs::queue(app, &fix).await?;
    super::notify::run_step(app, &fix, super::notify::Step::Queued, None).await;
    let mut u = Update::new(runs::run_pk(&run.id), runs::RUN_SK);
    u.set.insert("remediation".into(), Value::S(fix.id.clone()));
    u.condition = Some(Condition::Exists);
    meta.update(u).await?;
    Ok(())
}

/// `StackDriftStatus`: the newest drift run's finding, and whether one is under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftStatus {
    pub detected: bool,
    /// The newest drift run ("" when none).
    pub latest: String,
    pub in_progress: bool,
}

/// The drift runs of a stack, newest first (all of them: drift runs are a stack's few
/// scheduled checks).
pub async fn runs_of(meta: &dyn MetadataStore, stack_id: &str) -> Result<Vec<Run>> {
    let (all, _) = runs::list_stack(meta, stack_id, 1, usize::MAX, false).await?;
    Ok(all.into_iter().filter(|r| r.operation == Operation::DetectDrift).collect())
}

/// The stack's drift status.
pub async fn status(meta: &dyn MetadataStore, stack_id: &str) -> Result<DriftStatus> {
    let found = runs_of(meta, stack_id).await?;
    let latest_ended = found.iter().find(|r| r.status == Status::Succeeded);
    Ok(DriftStatus {
        detected: latest_ended.and_then(|r| r.drift.as_ref()).is_some_and(|f| f.detected),
        latest: found.first().map(|r| r.id.clone()).unwrap_or_default(),
        in_progress: found.iter().any(|r| !r.status.ended()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_changes_other_than_same_are_drift() {
        let m = |v: Json| v.as_object().cloned().unwrap_or_default();
        assert!(!is_drift(&m(json!({"same": 4}))));
        assert!(!is_drift(&m(json!({"same": 4, "update": 0}))));
        assert!(is_drift(&m(json!({"same": 3, "update": 1}))));
        assert!(is_drift(&m(json!({"delete": 1}))));
        assert!(!is_drift(&m(json!({}))));
    }
}
