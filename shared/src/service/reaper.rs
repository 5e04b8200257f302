//! The lease reaper (docs/ARCHITECTURE.md, Leases expire): ends updates whose CLI stopped
//! renewing the lease, so that a stack whose CLI was killed is usable again without
//! `pulumi cancel`.
//!
//! # Finding expired leases cheaply
//!
//! Starting an update writes one small index item (`SYS#LEASES`, sort key
//! `<started>#<stack id>#<update id>`, with the lease expiry granted at start) in the start
//! transaction; ending it (complete, cancel, or this reaper, all through
//! [`updates::finalize`]) deletes that item and writes an `SYS#ENDED` item for the retention
//! job in the finalize transaction. Renewals do not touch the index: a lease only ever grows,
//! so the expiry granted at start is a lower bound, and the reaper reads an update item only
//! once that lower bound has passed. Cost on the update hot path: start +1 put, finalize +1
//! delete +1 put (inside transactions that exist anyway), renew +0. Cost per reaper run: one
//! query page per ~thousands of running updates, plus one read of each update running longer
//! than its first lease.
//!
//! # Safety
//!
//! The reaper ends an update through [`updates::finalize_expired`], which re-checks the lease
//! on every retry of the finalize transaction (conditioned on the update's and the stack's
//! revisions). A CLI that renews between the reaper's read and its write changes the update's
//! revision, the transaction fails, the re-read shows a live lease, and the update keeps
//! running. Two reapers, or a reaper and a `start` that found the same abandoned update, race
//! on the same conditions: one wins, the other sees an ended update. Running the reaper again
//! finds nothing: the index item went away in the transaction that ended the update.

use serde::Serialize;

use super::item_keys;
use super::updates::{self, Status, Update};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::{StackId, UpdateId};
use crate::ports::{Item, Query, SortKey, TransactOp, Value};

/// Index items read per query page.
const PAGE: usize = 500;

/// The lease index item of an update started at `started` whose first lease ends at `expires`.
pub(crate) fn lease_index_op(update: &Update, started: i64, expires: i64) -> TransactOp {
    let item =
        Item::new(item_keys::LEASES_PK, item_keys::lease_sk(started, &update.stack_id, &update.id))
            .with("stack_id", Value::S(update.stack_id.to_string()))
            .with("update_id", Value::S(update.id.to_string()))
            .with("expires", Value::N(expires));
    TransactOp::Put(item, None)
}

/// What ending a started update does to the indexes: its lease index item and its
/// organization's running-update item go, and an ended-update item tells the retention job
/// when its scratch blobs may go.
pub(crate) fn release_ops(update: &Update, ended: i64) -> Vec<TransactOp> {
    let Some(started) = update.started else { return Vec::new() };
    let done =
        Item::new(item_keys::ENDED_PK, item_keys::ended_sk(ended, &update.stack_id, &update.id))
            .with("stack_id", Value::S(update.stack_id.to_string()))
            .with("update_id", Value::S(update.id.to_string()));
    vec![
        TransactOp::Delete {
            pk: item_keys::LEASES_PK.to_string(),
            sk: item_keys::lease_sk(started, &update.stack_id, &update.id),
            condition: None,
        },
        TransactOp::Delete {
            pk: item_keys::running_pk(&update.org),
            sk: item_keys::running_sk(&update.stack_id, &update.id),
            condition: None,
        },
        TransactOp::Put(done, None),
    ]
}

/// What one reaper run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReapReport {
    /// Index items looked at (running updates).
    pub examined: usize,
    /// Updates whose lease is still live (including ones renewed, or ended by another caller,
    /// while being reaped).
    pub live: usize,
    /// Ids of the updates this run ended as failed.
    pub reaped: Vec<UpdateId>,
    /// Index items naming an update that is gone or already ended, removed.
    pub stale: usize,
    /// Updates that could not be handled this time (left for the next run).
    pub errors: usize,
}

/// One pass over the lease index at `now`: every running update whose lease has lapsed is
/// ended as failed, keeping the last state it had acknowledged (its last checkpoint, or its
/// journal replayed up to the last entry stored), and its stack is freed. Idempotent.
pub async fn run(app: &App, now: i64) -> Result<ReapReport> {
    let meta = app.ports.meta.as_ref();
    let mut report = ReapReport::default();
    let mut query = Query {
        pk: item_keys::LEASES_PK.to_string(),
        sk: SortKey::All,
        ascending: true,
        limit: PAGE,
        after: None,
    };
    loop {
        let page = meta.query(query.clone()).await?;
        for item in &page.items {
            report.examined += 1;
            if let Err(e) = reap_one(app, item, now, &mut report).await {
                report.errors += 1;
                tracing::warn!(sk = %item.sk, error = %e.chain(), "lease reaper: update left for the next run");
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    if !report.reaped.is_empty() {
        tracing::info!(reaped = ?report.reaped, "lease reaper ended abandoned updates");
    }
    Ok(report)
}

async fn reap_one(app: &App, item: &Item, now: i64, report: &mut ReapReport) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let ids = (item.s("stack_id"), item.s("update_id"));
    let (Some(stack_id), Some(update_id)) = ids else {
        meta.delete(&item.pk, &item.sk, None).await?;
        report.stale += 1;
        return Ok(());
    };
    // Leases only grow: before the first lease's end there is nothing to read.
    if item.n("expires").is_some_and(|expires| expires > now) {
        report.live += 1;
        return Ok(());
    }
    let (stack_id, update_id) = (StackId::from_stored(stack_id), UpdateId::from_stored(update_id));
    let update = match updates::get(meta, &stack_id, &update_id).await {
        Ok(u) => u,
        Err(Error::NotFound(_)) => {
            meta.delete(&item.pk, &item.sk, None).await?;
            report.stale += 1;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if update.status.is_final() || update.status == Status::NotStarted {
        // Ended by a path that could not release the index item: release it now.
        meta.delete(&item.pk, &item.sk, None).await?;
        report.stale += 1;
        return Ok(());
    }
    if update.is_live(now) {
        report.live += 1;
        return Ok(());
    }
    match updates::finalize_expired(app, update).await? {
        Some(ended) => report.reaped.push(ended.id),
        // Renewed meanwhile, or ended by someone else (a complete, a start, another reaper).
        None => report.live += 1,
    }
    Ok(())
}
