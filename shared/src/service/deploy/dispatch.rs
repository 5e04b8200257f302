//! Starting runs (`job-deployment-start`): one run per stack at a time, none while its stack
//! or organization is paused, each with a token of its own and a runner the launcher starts;
//! and the reaper (`job-deployment-reaper`) for runners that stopped reporting and messages
//! that were lost.

use serde::Serialize;

use super::report::finish;
use super::runs::{
    get, live_runs, message, Run, Status, ACTIVE_SK, BUSY_RETRY_SECONDS, DEPLOYMENTS_QUEUE,
    LIVE_PK, PAUSED_RETRY_SECONDS, PAUSED_SK, REQUEUE_SECONDS, STALE_SECONDS, TOKEN_SECONDS,
};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::launcher::Launch;
use crate::ports::{Condition, Item, MetaError, MetadataStore, TransactOp, Value};
use crate::service::identity;
use crate::service::item_keys;

/// `job-deployment-start`, for one queued run: takes the stack's slot (or waits for it),
/// mints the run's token and has the launcher start a runner.
pub async fn start(app: &App, id: &str) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let run = match get(meta, id).await {
        Ok(run) => run,
        Err(Error::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if run.status != Status::NotStarted {
        return Ok(());
    }
    let now = app.clock.now();
    if run.cancel {
        return finish(app, &run, false, "cancelled before it started").await;
    }
    if paused(meta, &run.org, &run.stack_id).await?.any() {
        let delay = std::time::Duration::from_secs(PAUSED_RETRY_SECONDS);
        app.ports.queue.send(DEPLOYMENTS_QUEUE, &message(id), delay).await?;
        return Ok(());
    }
    if !claim_slot(app, &run).await? {
        let delay = std::time::Duration::from_secs(BUSY_RETRY_SECONDS);
        app.ports.queue.send(DEPLOYMENTS_QUEUE, &message(id), delay).await?;
        return Ok(());
    }
    let token = identity::new_token();
    let hash = identity::hash_token(&token);
    let accepted = Run {
        status: Status::Accepted,
        token_hash: Some(hash.clone()),
        started: Some(now),
        modified: now,
        ..run.clone()
    };
    let token_item = run.requester.token_item(&hash, &run, now + TOKEN_SECONDS);
    let cond = Condition::Equals("status".into(), Value::S(Status::NotStarted.as_str().into()));
    match meta
        .transact(vec![
            TransactOp::Put(accepted.item(), Some(cond)),
            TransactOp::Put(token_item, Some(Condition::NotExists)),
        ])
        .await
    {
        Ok(()) => {}
        // Started by another consumer meanwhile (a redelivered message).
        Err(MetaError::ConditionFailed) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let launched = match app.launcher.get() {
        Some(l) => l.launch(&Launch { deployment: id.to_string(), token }).await.map_err(|e| e.0),
        None => Err("no runner can be started here: this process has no launcher".to_string()),
    };
    if let Err(why) = launched {
        finish(app, &accepted, false, &format!("the runner did not start: {why}")).await?;
    }
    Ok(())
}

/// Takes the stack's slot for `run` (true), or finds it held by another live run (false).
async fn claim_slot(app: &App, run: &Run) -> Result<bool> {
    let meta = app.ports.meta.as_ref();
    let pk = item_keys::stack_id_pk(&run.stack_id);
    for _ in 0..4 {
        let slot = Item::new(pk.clone(), ACTIVE_SK).with("id", Value::S(run.id.clone()));
        let cond =
            Condition::NotExists.or(Condition::Equals("id".into(), Value::S(run.id.clone())));
        match meta.put(slot, Some(cond)).await {
            Ok(()) => return Ok(true),
            Err(MetaError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
        // Held: by a live run, or by one that ended without freeing it (a crash).
        let Some(held) = meta.get(&pk, ACTIVE_SK).await? else { continue };
        let holder = held.s("id").unwrap_or_default().to_string();
        let live = match get(meta, &holder).await {
            Ok(other) => !other.status.ended(),
            Err(Error::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        if live {
            return Ok(false);
        }
        let cond = Condition::Equals("id".into(), Value::S(holder));
        match meta.delete(&pk, ACTIVE_SK, Some(cond)).await {
            Ok(()) | Err(MetaError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// What a pass of the reaper did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReapReport {
    /// Runs not ended that it looked at.
    pub examined: usize,
    /// Runs it failed: their runner stopped reporting (or never started).
    pub failed: Vec<String>,
    /// Waiting runs whose queue message it sent again.
    pub requeued: Vec<String>,
}

/// `job-deployment-reaper`: fails the runs whose runner stopped reporting for
/// [`STALE_SECONDS`] (the time comes from the app's clock), and sends again the message of a
/// run still waiting [`REQUEUE_SECONDS`] after it was made while its stack's slot is free.
pub async fn reap(app: &App, now: i64) -> Result<ReapReport> {
    let meta = app.ports.meta.as_ref();
    let mut report = ReapReport::default();
    for run in live_runs(meta).await? {
        report.examined += 1;
        match run.status {
            s if s.ended() => {
                meta.delete(LIVE_PK, &run.id, None).await?;
            }
            Status::NotStarted => {
                if now - run.created >= REQUEUE_SECONDS && slot_free(meta, &run).await? {
                    let zero = std::time::Duration::ZERO;
                    app.ports.queue.send(DEPLOYMENTS_QUEUE, &message(&run.id), zero).await?;
                    report.requeued.push(run.id.clone());
                }
            }
            _ => {
                let last = run.heartbeat.or(run.started).unwrap_or(run.created);
                if now - last >= STALE_SECONDS {
                    let why = format!(
                        "the runner stopped reporting: nothing from it for {} s",
                        now - last
                    );
                    finish(app, &run, false, &why).await?;
                    report.failed.push(run.id.clone());
                }
            }
        }
    }
    Ok(report)
}

/// Whether no live run holds the stack's slot.
async fn slot_free(meta: &dyn MetadataStore, run: &Run) -> Result<bool> {
    let Some(held) = meta.get(&item_keys::stack_id_pk(&run.stack_id), ACTIVE_SK).await? else {
        return Ok(true);
    };
    match get(meta, held.s("id").unwrap_or_default()).await {
        Ok(holder) => Ok(holder.status.ended()),
        Err(Error::NotFound(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether runs of a stack may start: paused on the stack, on its organization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paused {
    pub stack: bool,
    pub org: bool,
}

impl Paused {
    /// Paused either way.
    pub fn any(self) -> bool {
        self.stack || self.org
    }
}

/// The pause flags of a stack (by id) and its organization.
pub async fn paused(meta: &dyn MetadataStore, org: &str, stack_id: &str) -> Result<Paused> {
    Ok(Paused {
        stack: meta.get(&item_keys::stack_id_pk(stack_id), PAUSED_SK).await?.is_some(),
        org: meta.get(&item_keys::org_pk(org), PAUSED_SK).await?.is_some(),
    })
}

/// Whose runs a pause holds.
#[derive(Clone, Copy)]
pub enum PauseScope<'a> {
    Stack(&'a str),
    Org(&'a str),
}

/// Pauses (`true`) or resumes runs: while paused, queued runs wait (created runs stay
/// queued, running ones go on); on resume, the waiting ones are sent again at once.
/// Idempotent.
pub async fn set_paused(app: &App, scope: PauseScope<'_>, pause: bool) -> Result<()> {
    let pk = match scope {
        PauseScope::Stack(stack_id) => item_keys::stack_id_pk(stack_id),
        PauseScope::Org(org) => item_keys::org_pk(org),
    };
    let meta = app.ports.meta.as_ref();
    if pause {
        let item = Item::new(pk, PAUSED_SK).with("since", Value::N(app.clock.now()));
        meta.put(item, None).await?;
        return Ok(());
    }
    meta.delete(&pk, PAUSED_SK, None).await?;
    // The runs that waited go now rather than at their next look.
    for run in live_runs(meta).await? {
        let ours = match scope {
            PauseScope::Stack(id) => run.stack_id == id,
            PauseScope::Org(org) => run.org == org,
        };
        if ours && run.status == Status::NotStarted {
            let zero = std::time::Duration::ZERO;
            app.ports.queue.send(DEPLOYMENTS_QUEUE, &message(&run.id), zero).await?;
        }
    }
    Ok(())
}
