//! Reading an organization's events in order after a number, each one only for callers who
//! may read what it is about, and waiting (long-poll) for the next when there is none yet.

use std::time::Duration;

use super::{feed_pk, Event, EVENT_PREFIX};
use crate::app::App;
use crate::error::Result;
use crate::ports::{Query, SortKey};
use crate::service::access::{OrgAccess, StackPermission};
use crate::service::identity::{Principal, Role};

/// Longest a reader may wait: well inside API Gateway's 29 s integration timeout.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// How often a waiting reader looks again when no append in this process woke it (events
/// written by other processes: other Lambda functions).
pub const POLL: Duration = Duration::from_millis(250);

/// One page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The events the caller may see, in order.
    pub events: Vec<Event>,
    /// The number to continue after: the last one looked at, seen or not (events the caller
    /// may not see are skipped for good), or the `after` asked for when there were none.
    pub next: i64,
}

/// What a reader asks for: an organization's events after a number.
#[derive(Debug, Clone)]
pub struct Ask {
    /// Only events with a higher number.
    pub after: i64,
    /// At most this many events.
    pub limit: usize,
    /// How long to wait for the first one when there is none yet.
    pub wait: Duration,
    /// Only the events of this stack (its immutable id: renames keep its events together).
    pub stack_id: Option<String>,
}

/// Up to `ask.limit` events of `org` after `ask.after` that `principal` may see, waiting up to
/// `ask.wait` for the first one when there is none yet (the answer is then empty).
pub async fn read(app: &App, principal: &Principal, org: &str, ask: Ask) -> Result<Page> {
    let Ask { after, limit, wait, stack_id } = ask;
    let mut access = OrgAccess::resolve(app.ports.meta.as_ref(), principal, org).await?;
    let role = access.require_member()?;
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first look, so an append between the look and the wait wakes it.
    let mut appended = app.feed_signal.subscribe();
    let mut after = after;
    loop {
        let page = look(app, &mut access, role, org, after, limit, stack_id.as_deref()).await?;
        let now = tokio::time::Instant::now();
        if !page.events.is_empty() || now >= deadline {
            return Ok(page);
        }
        // Events the caller may not see move the cursor on; keep waiting past them.
        after = page.next;
        let nap = POLL.min(deadline - now);
        let _ = tokio::time::timeout(nap, appended.changed()).await;
    }
}

/// One look: the events after `after`, filtered.
async fn look(
    app: &App,
    access: &mut OrgAccess,
    role: Role,
    org: &str,
    after: i64,
    limit: usize,
    stack_id: Option<&str>,
) -> Result<Page> {
    let meta = app.ports.meta.as_ref();
    let query = Query {
        pk: feed_pk(org),
        sk: SortKey::BeginsWith(EVENT_PREFIX.to_string()),
        ascending: true,
        limit,
        after: Some(super::event_sk(after)),
    };
    let items = meta.query(query).await?.items;
    let mut next = after;
    let mut events = Vec::new();
    for item in &items {
        let event = Event::from_item(item);
        next = next.max(event.seq);
        let in_scope = stack_id.is_none_or(|id| event.stack.as_ref().is_some_and(|s| s.id == id));
        if in_scope && visible(meta, access, role, &event).await? {
            events.push(event);
        }
    }
    Ok(Page { events, next })
}

/// Stack events for whoever may read the stack; organization-level ones for administrators.
pub(super) async fn visible(
    meta: &dyn crate::ports::MetadataStore,
    access: &mut OrgAccess,
    role: Role,
    event: &Event,
) -> Result<bool> {
    match &event.stack {
        None => Ok(role == Role::Admin),
        Some(s) => {
            let perm = access
                .stack_permission_by_id(meta, &s.id, s.creator.as_deref(), StackPermission::Read)
                .await?;
            Ok(perm >= StackPermission::Read)
        }
    }
}
