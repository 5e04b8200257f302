//! A change's records, its audit entry and its organization's event, written in the change's
//! own transaction: the change costs one commit instead of three in a row (on the embedded
//! store, one fsync'd group each; on DynamoDB, one round trip each), and no crash can keep
//! the change while losing its records.
//!
//! Two kinds ride along this way:
//! - **An update's end** (complete, cancel, lease expiry) writes its summary entry and its
//!   `update-ended` event in the transaction that ends it (`updates::lifecycle::end`).
//! - **A token call's entry and event**, which dispatch otherwise writes after the handler.
//!   Dispatch builds them before the handler runs, as they read if the call answers
//!   [`ASSUMED_STATUS`], and [`offer`]s them. A handler whose service's next transaction is the
//!   call's last write, after which nothing can fail the call, wraps that call in
//!   [`last_write`]; the service adds them to that transaction with [`stage_call`]. Dispatch
//!   writes them itself when nothing did ([`Offered::written_for`]).
//!
//! The event's number is held by the transaction's condition on the organization's counter
//! (`feed::stage`): an event written meanwhile fails the whole transaction, and the service's
//! optimistic loop reads and tries again, as after any lost race. So that an organization
//! busy with events cannot starve a change (moto, serving one request at a time, refused an
//! update start after eight lost tries with eight writers), only the first
//! [`TRIES_WITH_RECORDS`] tries carry the records ([`Budget`]); later ones write the change
//! alone and the records right after it, as every other change does: one of each, but no
//! longer in one commit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{audit, feed};
use crate::app::App;
use crate::error::Result;
use crate::ports::TransactOp;

/// The status a token call's records are built with before its handler runs: what the routes
/// whose services attach them ([`last_write`]) answer on success.
pub const ASSUMED_STATUS: u16 = 200;

/// How many tries of a change carry its records (see the module docs).
pub const TRIES_WITH_RECORDS: u32 = 2;

/// Counts the tries of one change that carried its records.
#[derive(Debug, Default)]
pub struct Budget(u32);

impl Budget {
    /// Whether this try may carry the records (and counts it if so).
    pub fn take(&mut self) -> bool {
        let left = self.0 < TRIES_WITH_RECORDS;
        self.0 += u32::from(left);
        left
    }
}

/// An audit entry and an event of one organization, either of them optional.
#[derive(Debug, Clone)]
pub struct Records {
    org: String,
    entry: Option<audit::Entry>,
    event: Option<feed::NewEvent>,
}

/// What to do once the transaction holding staged records committed.
#[derive(Debug)]
pub struct Staged {
    event: Option<feed::Staged>,
}

impl Records {
    /// Records for `org`.
    pub fn new(org: &str, entry: Option<audit::Entry>, event: Option<feed::NewEvent>) -> Records {
        Records { org: org.to_string(), entry, event }
    }

    /// Whether there is anything to write.
    pub fn is_empty(&self) -> bool {
        self.entry.is_none() && self.event.is_none()
    }

    /// Writes the records on their own, for a change that committed without them; logs
    /// failures (the change has happened either way).
    pub async fn write(&self, app: &App) {
        let entry = async {
            if let Some(entry) = &self.entry {
                if let Err(e) = audit::append(app.ports.meta.as_ref(), &self.org, entry).await {
                    tracing::error!(org = self.org, error = %e, "audit entry could not be written");
                }
            }
        };
        let event = async {
            if let Some(event) = &self.event {
                feed::record(app, &self.org, event.clone()).await;
            }
        };
        // Made together, so the embedded store's group commit can make them durable at once.
        tokio::join!(entry, event);
    }

    /// Adds the records' writes to `ops` (reads the event counter: call it on every try).
    pub async fn stage(&self, app: &App, ops: &mut Vec<TransactOp>) -> Result<Staged> {
        if let Some(entry) = &self.entry {
            ops.push(audit::entry_op(&self.org, entry));
        }
        let event = match &self.event {
            Some(event) => Some(feed::stage(app, &self.org, event, ops).await?),
            None => None,
        };
        Ok(Staged { event })
    }
}

impl Staged {
    /// Tells this process's stream readers: call once the transaction committed.
    pub fn committed(&self, app: &App) {
        if let Some(event) = &self.event {
            event.announce(app);
        }
    }
}

/// A token call's records, offered by dispatch to the handler's service.
#[derive(Debug)]
pub struct Offered {
    records: Records,
    committed: AtomicBool,
}

impl Offered {
    /// Records dispatch would write for the call if it answers [`ASSUMED_STATUS`].
    pub fn new(records: Records) -> Arc<Offered> {
        Arc::new(Offered { records, committed: AtomicBool::new(false) })
    }

    /// Whether the records are stored for a call that answered `status`: a service committed
    /// them with its change and the call answered the status they were built with. Otherwise
    /// dispatch writes the call's records itself (should a service have committed them and
    /// the call then answered another status, the log holds both entries: the true one last).
    pub fn written_for(&self, status: u16) -> bool {
        status == ASSUMED_STATUS && self.committed.load(Ordering::Acquire)
    }
}

tokio::task_local! {
    static OFFERED: Option<Arc<Offered>>;
    static LAST_WRITE: Arc<Offered>;
}

/// Runs `f` (a handler) with the call's records on offer to [`last_write`].
pub async fn offer<F: Future>(offered: Option<Arc<Offered>>, f: F) -> F::Output {
    OFFERED.scope(offered, f).await
}

/// Runs `f`, the service call that makes the route's last write: nothing after it may fail
/// the call. Its [`stage_call`] adds the call's records to that write.
pub async fn last_write<F: Future>(f: F) -> F::Output {
    match OFFERED.try_with(Clone::clone).ok().flatten() {
        Some(offered) => LAST_WRITE.scope(offered, f).await,
        None => f.await,
    }
}

/// A call's records staged in a transaction; [`Attached::committed`] once it committed.
#[derive(Debug)]
pub struct Attached {
    offered: Arc<Offered>,
    staged: Staged,
}

impl Attached {
    /// Marks the call's records written, so dispatch does not write them again.
    pub fn committed(self, app: &App) {
        self.staged.committed(app);
        self.offered.committed.store(true, Ordering::Release);
    }
}

/// Adds the call's records to `ops` when the call runs in [`last_write`], nothing committed
/// them yet and `budget` allows; None otherwise (a service called from another route's
/// handler, e.g. an import's start, leaves them to dispatch, as do tries past the budget).
pub async fn stage_call(
    app: &App,
    ops: &mut Vec<TransactOp>,
    budget: &mut Budget,
) -> Result<Option<Attached>> {
    let Some(offered) = LAST_WRITE.try_with(Clone::clone).ok() else { return Ok(None) };
    if offered.committed.load(Ordering::Acquire) || !budget.take() {
        return Ok(None);
    }
    let staged = offered.records.stage(app, ops).await?;
    Ok(Some(Attached { offered, staged }))
}
