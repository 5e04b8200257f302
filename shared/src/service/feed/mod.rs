//! The event stream's persistent events (issue 17): every change an access token made (each
//! call the audit log records as a change) and the end of every update becomes an event of
//! its organization, numbered by a per-organization sequence (`seq`) with no gap and no
//! duplicate among stored events, kept for `STACKHOUSE_EVENT_RETENTION_DAYS` (TTL), and read
//! in order after a `seq` ([`read`]), waiting for the next one when asked to.
//!
//! **How a number is allocated.** Atomically with its event: one transaction moves the
//! organization's counter from n to n+1 (conditioned on it being n) and creates event n+1
//! (conditioned on it being absent), so a number exists exactly when its event does. Writers
//! racing for the same n lose the condition and retry with the next one. Not with an atomic
//! `ADD`: a number whose event write then failed, or whose writer died, would be a gap that
//! readers wait on forever. In the change's own transaction where its service allows it
//! (update create, start and end: [`stage`], `service::call_records`), so the change, its
//! audit entry and its event are one commit; elsewhere (changes written by many services, most
//! by one conditional put) the event is written right after the change and before the answer,
//! like the audit entry, so a crash between the two loses the event (never the change, and
//! never a number).
//!
//! Cost per event: one `GetItem` (the counter) and two items of a transaction (its own, or
//! the change's), more under contention; reads are `Query` pages of one partition.

pub mod fanout;
pub mod presence;
pub mod read;
mod signal;
pub mod sockets;
pub mod wire;

pub use signal::Signal;
pub use wire::WireEvent;

use serde_json::{json, Value as Json};

use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::metadata::TTL_ATTR;
use crate::ports::{Condition, Item, MetaError, MetadataStore, TransactOp, Value};
use crate::service::optimistic::backoff;

/// Partition of an organization's events and their counter.
pub fn feed_pk(org: &str) -> String {
    format!("FEED#{org}")
}
/// Sort key of the counter item.
const COUNTER_SK: &str = "SEQ";
/// Sort-key prefix of events: `E#<seq, 20 digits>`, so sort order is seq order.
const EVENT_PREFIX: &str = "E#";
/// Tries of one append before giving up (each loses only to another event being written).
const TRIES: u32 = 40;

/// The organization a stream record's partition key names (`FEED#<org>`, `WS#<org>`).
pub fn org_of_stream_key(pk: &str) -> Option<&str> {
    pk.strip_prefix("FEED#").or_else(|| pk.strip_prefix("WS#")).filter(|org| !org.is_empty())
}

fn event_sk(seq: i64) -> String {
    format!("{EVENT_PREFIX}{:020}", seq.max(0))
}

/// The stack an event is about: who may read it decides who sees the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStack {
    /// Project.
    pub project: String,
    /// Stack name at the time of the event.
    pub stack: String,
    /// Immutable stack id (permissions hang off it).
    pub id: String,
    /// The stack's creator (an admin of it), if known.
    pub creator: Option<String>,
}

/// One event, as stored and as served.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the organization's stream, from 1.
    pub seq: i64,
    /// When, in Unix microseconds.
    pub time_us: i64,
    /// Who: the login the caller acted as (the update's author for update ends).
    pub actor: String,
    /// What: the route's name (`stack-create`, `stack-tags-update`, …) or `update-ended`.
    pub kind: String,
    /// The request path (the update's path for update ends).
    pub path: String,
    /// The stack it is about; None for organization-level changes (members, teams, tokens,
    /// hooks), which only administrators see.
    pub stack: Option<EventStack>,
    /// A small JSON object with the details.
    pub payload: Json,
}

impl Event {
    fn to_item(&self, org: &str, ttl: i64) -> Item {
        let mut item = Item::new(feed_pk(org), event_sk(self.seq))
            .with("seq", Value::N(self.seq))
            .with("time_us", Value::N(self.time_us))
            .with("actor", Value::S(self.actor.clone()))
            .with("kind", Value::S(self.kind.clone()))
            .with("path", Value::S(self.path.clone()))
            .with("payload", Value::S(self.payload.to_string()))
            .with(TTL_ATTR, Value::N(ttl));
        if let Some(s) = &self.stack {
            item.set("project", Value::S(s.project.clone()));
            item.set("stack", Value::S(s.stack.clone()));
            item.set("stack_id", Value::S(s.id.clone()));
            if let Some(c) = &s.creator {
                item.set("creator", Value::S(c.clone()));
            }
        }
        item
    }

    fn from_item(item: &Item) -> Event {
        let s = |name: &str| item.s(name).unwrap_or_default().to_string();
        let stack = item.s("stack_id").map(|id| EventStack {
            project: s("project"),
            stack: s("stack"),
            id: id.to_string(),
            creator: item.s("creator").map(str::to_string),
        });
        Event {
            seq: item.n("seq").unwrap_or(0),
            time_us: item.n("time_us").unwrap_or(0),
            actor: s("actor"),
            kind: s("kind"),
            path: s("path"),
            stack,
            payload: item
                .s("payload")
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(json!({})),
        }
    }
}

/// What to append: an [`Event`] without its number and time.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// See [`Event::actor`].
    pub actor: String,
    /// See [`Event::kind`].
    pub kind: String,
    /// See [`Event::path`].
    pub path: String,
    /// See [`Event::stack`].
    pub stack: Option<EventStack>,
    /// See [`Event::payload`].
    pub payload: Json,
}

/// Appends an event to `org`'s stream and wakes this process's waiting readers; returns its
/// number. Logs (does not return) failures: the change has happened and its answer must reach
/// the client either way.
pub async fn record(app: &App, org: &str, event: NewEvent) {
    let kind = event.kind.clone();
    if let Err(e) = append(app, org, event).await {
        tracing::error!(org, kind, error = %e, "event could not be written");
    }
}

/// Appends an event (see the module docs for how its number is allocated).
pub async fn append(app: &App, org: &str, event: NewEvent) -> Result<i64> {
    let meta = app.ports.meta.as_ref();
    // A try whose outcome is unknown (a timeout) may have committed, and must not be written a
    // second time under another number: the next try looks for it first.
    let mut unknown: Option<Staged> = None;
    for n in 0..TRIES {
        backoff(n).await;
        if let Some(tried) = unknown.take() {
            if tried.landed(meta).await? {
                tried.announce(app);
                return Ok(tried.seq);
            }
        }
        let mut ops = Vec::with_capacity(2);
        let staged = stage(app, org, &event, &mut ops).await?;
        match meta.transact(ops).await {
            Ok(()) => {
                staged.announce(app);
                return Ok(staged.seq);
            }
            // Lost the number to another event (or its transaction): nothing was written.
            Err(MetaError::ConditionFailed | MetaError::Contended(_)) => {}
            Err(MetaError::Unavailable(_)) => unknown = Some(staged),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Unavailable(format!("the event stream of '{org}' is too contended, event lost")))
}

/// An event whose writes were added to a transaction: its number is the counter's next, held
/// by the transaction's condition on the counter, so an event written meanwhile fails the
/// whole transaction (`ConditionFailed`) and the writer stages it again.
#[derive(Debug)]
pub struct Staged {
    org: String,
    /// The number it gets if the transaction commits.
    pub seq: i64,
    // Tells this event from another one of the same number, after an unknown outcome.
    nonce: String,
}

/// Adds to `ops` the writes that append `event` to `org`'s stream: the counter moved from its
/// current value to the next (conditioned on it), and the event under the next number. The
/// caller commits them with its own writes in one transaction, then [`Staged::announce`]s it.
pub async fn stage(
    app: &App,
    org: &str,
    event: &NewEvent,
    ops: &mut Vec<TransactOp>,
) -> Result<Staged> {
    let meta = app.ports.meta.as_ref();
    let (secs, micros) = app.clock.now_micros();
    let time_us = secs.saturating_mul(1_000_000).saturating_add(i64::from(micros));
    let ttl = secs.saturating_add(app.settings.event_retention_seconds);
    let nonce = hex::encode(rand::random::<[u8; 8]>());
    let current = counter(meta, org).await?;
    let seq = current + 1;
    let mut item = Event {
        seq,
        time_us,
        actor: event.actor.clone(),
        kind: event.kind.clone(),
        path: event.path.clone(),
        stack: event.stack.clone(),
        payload: event.payload.clone(),
    }
    .to_item(org, ttl);
    item.set("nonce", Value::S(nonce.clone()));
    let counter_cond = if current == 0 {
        Condition::NotExists
    } else {
        Condition::Equals("seq".into(), Value::N(current))
    };
    ops.push(TransactOp::Put(
        Item::new(feed_pk(org), COUNTER_SK).with("seq", Value::N(seq)),
        Some(counter_cond),
    ));
    ops.push(TransactOp::Put(item, Some(Condition::NotExists)));
    Ok(Staged { org: org.to_string(), seq, nonce })
}

impl Staged {
    /// Wakes this process's readers waiting on the organization: call once the transaction
    /// holding the event committed.
    pub fn announce(&self, app: &App) {
        app.feed_signal.appended(&self.org);
    }

    /// Whether the transaction holding the event committed after all (for a try whose outcome
    /// was unknown).
    pub async fn landed(&self, meta: &dyn MetadataStore) -> Result<bool> {
        Ok(meta
            .get(&feed_pk(&self.org), &event_sk(self.seq))
            .await?
            .is_some_and(|i| i.s("nonce") == Some(self.nonce.as_str())))
    }
}

/// The organization's last allocated number (0 before its first event).
pub async fn counter(meta: &dyn MetadataStore, org: &str) -> Result<i64> {
    Ok(meta.get(&feed_pk(org), COUNTER_SK).await?.and_then(|i| i.n("seq")).unwrap_or(0))
}

impl EventStack {
    /// The reference to `stack`.
    pub fn of(stack: &crate::service::stacks::Stack) -> EventStack {
        EventStack {
            project: stack.project.clone(),
            stack: stack.stack.clone(),
            id: stack.id.to_string(),
            creator: stack.creator.clone(),
        }
    }
}

/// The event of an update's end (`update-ended`), as the audit log summarises it: its lease
/// calls are not events of their own. None for an update that ran no program. `creator`: the
/// stack's, when it still exists. Written in the transaction that ends the update
/// (`service::call_records`).
pub fn update_ended_event(
    update: &crate::service::updates::Update,
    creator: Option<String>,
) -> Option<NewEvent> {
    if !update.ran_a_program() {
        return None;
    }
    let operation = if update.dry_run { "preview" } else { update.kind.as_str() };
    Some(NewEvent {
        actor: update.author.clone(),
        kind: "update-ended".into(),
        path: format!(
            "/api/stacks/{}/{}/{}/{}/{}",
            update.org, update.project, update.stack, update.kind, update.id
        ),
        stack: Some(EventStack {
            project: update.project.clone(),
            stack: update.stack.clone(),
            id: update.stack_id.to_string(),
            creator,
        }),
        payload: json!({
            "updateId": update.id.to_string(),
            "kind": operation,
            "result": update.status.result(),
            "version": update.version,
        }),
    })
}
