//! `job-deployment-scheduler`: every minute, makes the runs of the schedules that are due.
//!
//! Each schedule's `next` is its window cursor. A pass makes each due window into a run,
//! oldest first, at most `per_tick` windows per schedule (a scheduler that was down catches
//! up over several passes instead of flooding the queue), and never twice: the run, the
//! history event and the cursor's move to the following window are one transaction,
//! conditional on the cursor still being at that window — two schedulers racing make the
//! window's run once between them, and a crash leaves either all of it or none.

use serde::Serialize;

use super::runs::{self, Request};
use super::schedules::{find, schedule_pk, HistoryEvent, Schedule, Timing, INDEX_PK, SCHEDULE_SK};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, MetaError, Query, TransactOp, Value};
use crate::service::access::query_all;
use crate::service::item_keys;

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Schedules looked at.
    pub examined: usize,
    /// Windows made into runs: (schedule, window, run).
    pub fired: Vec<(String, i64, String)>,
    /// Windows that could make no run (no settings, the stack gone): (schedule, window, why).
    pub failed: Vec<(String, i64, String)>,
    /// Schedules with due windows left for the next pass.
    pub behind: usize,
}

/// How firing one window went.
enum Fired {
    /// This pass moved the cursor on; the schedule as it is now (None: it removed itself).
    Moved(Option<Box<Schedule>>),
    /// Another scheduler fired the window first.
    Lost,
}

/// One pass at `now` (from the app's clock).
pub async fn tick(app: &App, now: i64, per_tick: usize) -> Result<TickReport> {
    let meta = app.ports.meta.as_ref();
    let mut report = TickReport::default();
    for entry in query_all(meta, Query::prefix(INDEX_PK, "", 500)).await? {
        let Some(mut schedule) = find(meta, &entry.sk).await? else {
            // Deleted meanwhile (its index entry goes with it; this one is a leftover).
            meta.delete(INDEX_PK, &entry.sk, None).await?;
            continue;
        };
        report.examined += 1;
        if schedule.paused {
            continue;
        }
        let mut done = 0;
        while let Some(window) = schedule.next.filter(|w| *w <= now) {
            if done == per_tick {
                report.behind += 1;
                break;
            }
            match fire(app, &schedule, window, now, &mut report).await? {
                Fired::Moved(Some(s)) => schedule = *s,
                Fired::Moved(None) | Fired::Lost => break,
            }
            done += 1;
        }
    }
    Ok(report)
}

/// Makes `window` of `schedule` into a run (or, when no run can be made, records why), and
/// moves the cursor on — in one transaction.
async fn fire(
    app: &App,
    schedule: &Schedule,
    window: i64,
    now: i64,
    report: &mut TickReport,
) -> Result<Fired> {
    let following = match &schedule.timing {
        Timing::Cron(_) => schedule.timing.next_after(window)?,
        Timing::Once(_) => None,
    };
    let after = Schedule {
        next: following,
        last_executed: Some(window),
        modified: now,
        ..schedule.clone()
    };
    let after_item = after.item()?;
    let cursor = Condition::Equals("next".into(), Value::N(window));
    // What moves the cursor: a one-time schedule removes itself (as Pulumi Cloud's do), others
    // keep a history event of the window.
    let moves = |result: &str, deployment: Option<String>, message: Option<String>| {
        if following.is_none() && matches!(schedule.timing, Timing::Once(_)) {
            return vec![
                TransactOp::Delete {
                    pk: schedule_pk(&schedule.id),
                    sk: SCHEDULE_SK.into(),
                    condition: Some(cursor.clone()),
                },
                TransactOp::Delete {
                    pk: item_keys::stack_id_pk(&schedule.stack_id),
                    sk: format!("SCHED#{}", schedule.id),
                    condition: None,
                },
                TransactOp::Delete {
                    pk: INDEX_PK.into(),
                    sk: schedule.id.clone(),
                    condition: None,
                },
            ];
        }
        let event = HistoryEvent {
            schedule: schedule.id.clone(),
            executed: window,
            version: schedule.version,
            result: result.to_string(),
            deployment,
            message,
        };
        vec![
            TransactOp::Put(after_item.clone(), Some(cursor.clone())),
            TransactOp::Put(event.item(), Some(Condition::NotExists)),
        ]
    };
    let kept = (following.is_some() || matches!(schedule.timing, Timing::Cron(_)))
        .then(|| Box::new(after.clone()));

    let meta = app.ports.meta.as_ref();
    let (org, project, name) = (&schedule.org, &schedule.project, &schedule.stack);
    let prepared = match runs::stack_of(meta, org, project, name, &schedule.stack_id).await? {
        None => Err("the stack no longer exists".to_string()),
        Some(stack) => match Request::parse(schedule.request.clone()) {
            Err(e) => Err(e.to_string()),
            Ok(req) => match runs::run_settings(app, &schedule.stack_id, &req).await {
                Ok(settings) => Ok((stack, req, settings)),
                Err(e) if e.status().is_client_error() => Err(e.to_string()),
                Err(e) => return Err(e),
            },
        },
    };
    let (stack, req, settings) = match prepared {
        Ok(p) => p,
        Err(why) => {
            let ops = moves("failed", None, Some(why.clone()));
            return match app.ports.meta.transact(ops).await {
                Ok(()) => {
                    report.failed.push((schedule.id.clone(), window, why));
                    Ok(Fired::Moved(kept))
                }
                Err(MetaError::ConditionFailed) => Ok(Fired::Lost),
                Err(e) => Err(e.into()),
            };
        }
    };
    let made = runs::insert(
        app,
        &stack,
        &schedule.requester,
        &schedule.requested_by,
        req.operation,
        &settings,
        |run| moves("succeeded", Some(run.id.clone()), None),
    )
    .await?;
    match made {
        Some(run) => {
            runs::queue(app, &run).await?;
            let step = super::notify::Step::Queued;
            super::notify::run_step(app, &run, step, Some(&schedule.id)).await;
            report.fired.push((schedule.id.clone(), window, run.id));
            Ok(Fired::Moved(kept))
        }
        // Every try lost: on the cursor (another scheduler fired the window), or on the
        // stack's run counter many times over (tried again next pass).
        None => match find(app.ports.meta.as_ref(), &schedule.id).await? {
            Some(s) if s.next == Some(window) => {
                Err(Error::Conflict(format!("schedule {}: the stack stayed busy", schedule.id)))
            }
            _ => Ok(Fired::Lost),
        },
    }
}
