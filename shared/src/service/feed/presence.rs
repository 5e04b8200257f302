//! Presence: which updates are running in an organization right now, who runs them and when
//! their CLI last renewed the lease (its heartbeat). An update whose lease lapsed shows as
//! offline until the lease reaper ends it, which the stream then announces (`update-ended`).
//!
//! Read from a per-organization index (`RUNNING#<org>`) written in the update's start
//! transaction and deleted in its end transaction (`reaper::release_ops`), so it never names an
//! ended update; the heartbeat is read from each update item (renewals do not touch the index).
//! Updates started before this index existed do not show.
//!
//! Console viewers are the event stream's WebSocket connections scoped to a stack (or to an
//! update of it): shown while connected, gone when the socket closes (or, if `$disconnect`
//! never came, when API Gateway's 2-hour limit has passed and the record expires).

use crate::app::App;
use crate::error::Result;
use crate::names::{StackId, UpdateId};
use crate::ports::{Item, Query, SortKey, TransactOp, Value};
use crate::service::access::{OrgAccess, StackPermission};
use crate::service::identity::Principal;
use crate::service::item_keys;
use crate::service::stacks::Stack;
use crate::service::updates::{self, Status, Update};

/// Running updates listed per page of the index.
const PAGE: usize = 200;

/// The index item of an update that starts now, for its start transaction.
pub(crate) fn running_op(update: &Update, stack: &Stack, now: i64) -> TransactOp {
    let mut item = Item::new(
        item_keys::running_pk(&update.org),
        item_keys::running_sk(&update.stack_id, &update.id),
    )
    .with("stack_id", Value::S(update.stack_id.to_string()))
    .with("update_id", Value::S(update.id.to_string()))
    .with("started", Value::N(now));
    if let Some(c) = &stack.creator {
        item.set("creator", Value::S(c.clone()));
    }
    TransactOp::Put(item, None)
}

/// One running update as presence shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    /// The update.
    pub update: Update,
    /// When its CLI last renewed the lease (Unix seconds; the start for a fresh one).
    pub last_heartbeat: i64,
    /// Whether the lease still holds: false once the CLI stopped renewing it.
    pub online: bool,
}

/// The updates running in `org` that `principal` may see (those of stacks they may read).
pub async fn running(app: &App, principal: &Principal, org: &str) -> Result<Vec<Running>> {
    let meta = app.ports.meta.as_ref();
    let mut access = OrgAccess::resolve(meta, principal, org).await?;
    access.require_member()?;
    let now = app.clock.now();
    let mut query = Query {
        pk: item_keys::running_pk(org),
        sk: SortKey::All,
        ascending: true,
        limit: PAGE,
        after: None,
    };
    let mut out = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        for item in &page.items {
            let (Some(stack_id), Some(update_id)) = (item.s("stack_id"), item.s("update_id"))
            else {
                continue;
            };
            let perm = access
                .stack_permission_by_id(meta, stack_id, item.s("creator"), StackPermission::Read)
                .await?;
            if perm < StackPermission::Read {
                continue;
            }
            let (stack_id, update_id) =
                (StackId::from_stored(stack_id), UpdateId::from_stored(update_id));
            let update = match updates::get(meta, &stack_id, &update_id).await {
                Ok(u) => u,
                // Ended and cleaned up between the two reads.
                Err(crate::error::Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if update.status != Status::Running {
                continue;
            }
            // A renewal moves the expiry to renewal + lease length; never before the start.
            let started = item.n("started").unwrap_or(0);
            let last_heartbeat = (update.lease_expires - app.settings.lease_seconds).max(started);
            let online = update.is_live(now);
            out.push(Running { update, last_heartbeat, online });
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Someone watching a stack over the event stream's WebSocket (a console page, a CLI tail).
#[derive(Debug, Clone, PartialEq)]
pub struct Viewer {
    /// Who (the login their token acts as).
    pub user: String,
    /// `<project>/<stack>` as it was named when they connected.
    pub stack: String,
    /// The update they watch, if any.
    pub update_id: Option<String>,
    /// When they connected (Unix seconds).
    pub since: i64,
}

/// The stack-scoped WebSocket connections of `org` on stacks `principal` may read.
pub async fn viewers(app: &App, principal: &Principal, org: &str) -> Result<Vec<Viewer>> {
    let meta = app.ports.meta.as_ref();
    let mut access = OrgAccess::resolve(meta, principal, org).await?;
    access.require_member()?;
    let now = app.clock.now();
    let mut out = Vec::new();
    for c in super::sockets::list(app, org).await? {
        let (Some(id), Some(stack)) = (&c.scope.stack_id, &c.scope.stack_name) else { continue };
        // A record past its time is a socket that closed without `$disconnect`.
        if c.connected + super::sockets::CONNECTION_TTL_SECONDS <= now {
            continue;
        }
        let perm =
            access.stack_permission_by_id(meta, id.as_str(), None, StackPermission::Read).await?;
        if perm < StackPermission::Read {
            continue;
        }
        out.push(Viewer {
            user: c.principal.login().to_string(),
            stack: stack.clone(),
            update_id: c.scope.update_id.as_ref().map(|u| u.to_string()),
            since: c.connected,
        });
    }
    Ok(out)
}
