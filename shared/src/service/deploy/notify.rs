//! What a run tells the outside world as it goes: webhook deliveries of Pulumi Cloud's
//! deployment events (`deployment_queued`, `_started`, `_succeeded`, `_failed`; header
//! `Pulumi-Webhook-Kind: deployment`) to the hooks of its stack and organization, and audit
//! entries for what no API call records — a run made by a schedule, a run starting, a run
//! ending (by its runner, a cancel or the reaper). Neither ever fails the run: problems are
//! logged.

use super::runs::Run;
use super::Operation;
use crate::app::App;
use crate::names::StackId;
use crate::service::audit;
use crate::service::webhook_deliveries::{emit, DeploymentInfo, DomainEvent};

/// A step of a run's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Made and queued.
    Queued,
    Started,
    Ended,
}

/// Sends `step` of `run` (as it is now) to the hooks and, where no API call records it, the
/// audit log. `by_schedule`: the schedule that made a queued run.
pub(super) async fn run_step(app: &App, run: &Run, step: Step, by_schedule: Option<&str>) {
    let result = match step {
        Step::Queued => "queued",
        Step::Started => "started",
        Step::Ended => run.status.as_str(),
    };
    let event = DomainEvent {
        org: run.org.clone(),
        project: run.project.clone(),
        stack: run.stack.clone(),
        stack_id: StackId::from_stored(&run.stack_id),
        kind: format!("deployment_{result}"),
        user: run.requested_by.clone(),
        update: None,
        deployment: Some(DeploymentInfo {
            id: run.id.clone(),
            version: run.version,
            operation: super::runs::op_str(run.operation),
            status: run.status.as_str().to_string(),
            message: run.message.clone(),
        }),
    };
    emit(app, &event).await;
    // Drift runs also say what they are for.
    let drift_kinds: Vec<String> = match (step, run.operation) {
        (Step::Ended, Operation::DetectDrift) => {
            let found = run.drift.as_ref().is_some_and(|f| f.detected);
            let mut kinds = vec![format!("drift_detection_{result}")];
            if found {
                kinds.push("drift_detected".into());
            }
            kinds
        }
        (Step::Ended, Operation::RemediateDrift) => vec![format!("drift_remediation_{result}")],
        _ => vec![],
    };
    for kind in drift_kinds {
        emit(app, &DomainEvent { kind, ..event.clone() }).await;
    }

    let operation = super::runs::op_str(run.operation);
    let description = match (step, by_schedule) {
        (Step::Queued, None) => return, // the request that made it is audited as a call
        (Step::Queued, Some(schedule)) => {
            format!(
                "{operation} run {} (version {}) queued by schedule {schedule}",
                run.id, run.version
            )
        }
        (Step::Started, _) => {
            format!("{operation} run {} (version {}) started", run.id, run.version)
        }
        (Step::Ended, _) => {
            let took = match (run.started, run.ended) {
                (Some(s), Some(e)) => format!(" after {} s", e - s),
                _ => String::new(),
            };
            let why = run.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            format!("{operation} run {} (version {}) {result}{took}{why}", run.id, run.version)
        }
    };
    let (secs, micros) = app.clock.now_micros();
    let entry = audit::Entry {
        time_us: secs.saturating_mul(1_000_000).saturating_add(i64::from(micros)),
        actor: run.requested_by.clone(),
        token_id: String::new(),
        token_name: String::new(),
        source_ip: String::new(),
        action: format!("deployment-{result}"),
        resource: format!(
            "/api/stacks/{}/{}/{}/deployments/{}",
            run.org, run.project, run.stack, run.id
        ),
        status: None,
        description,
    };
    if let Err(e) = audit::append(app.ports.meta.as_ref(), &run.org, &entry).await {
        tracing::error!(deployment = %run.id, error = %e, "audit entry could not be written");
    }
}
