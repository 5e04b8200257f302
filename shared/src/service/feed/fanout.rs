//! Fan-out: sends each WebSocket connection of an organization, in order and once, the events
//! it may see — first its backlog (from the `after` it connected with), then each new event.
//!
//! **Who runs it.** On AWS, `job-feed-fanout`, triggered by the table's DynamoDB stream for
//! new events (`FEED#<org>`) and new connections (`WS#<org>`): the stream is the table's own
//! log of committed writes, so no event can be skipped and the change paths pay nothing for it
//! (a queue would cost every change one more call). In the emulator, a task woken by
//! [`super::Signal`] runs the same function.
//!
//! **Once and in order.** Runs for one organization take turns through a lease on its fan-out
//! item (`WS#<org>`/`FANOUT`: `seq` is how far every caught-up connection got; `until` is when
//! the running holder's lease lapses). A run that finds the lease held sets `again` on it and
//! stops; the holder lets go only while `again` is unset, so it does another round for what
//! the stopped run was woken for (an uncontended run: list, take, read, let go; a run that
//! finds no connection stops after the list, writing nothing). A connection that has not had
//! its backlog yet is sent the events after its own cursor and is then marked caught up;
//! every other connection is sent the events after `seq`. A run that dies part-way may send
//! some frames twice when the next run repeats it; clients skip any `seq` they already have.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use super::sockets::{self, Connection};
use super::{feed_pk, read, wire, Event, EVENT_PREFIX};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::UpdateId;
use crate::ports::{Condition, MetaError, PushError, Query, SortKey, Update, Value};
use crate::service::access::OrgAccess;
use crate::service::identity::{token_still_valid, Role};
use crate::service::item_keys;

/// Events read per round of a run.
const PAGE: usize = 500;
/// How long a run's lease lasts (far longer than a round takes).
const LEASE_SECONDS: i64 = 60;
/// Rounds per run: a client connecting with a long backlog gets it `PAGE` events at a time.
const MAX_ROUNDS: usize = 64;
/// Connections pushed to at once.
const CONCURRENCY: usize = 64;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Connections looked at (summed over rounds).
    pub connections: usize,
    /// Frames pushed.
    pub frames: usize,
    /// Connections found gone and forgotten, or closed for lost access.
    pub dropped: usize,
    /// Pushes that failed and will be tried again.
    pub failed: usize,
    /// Whether another run held the lease (this one did nothing).
    pub busy: bool,
}

impl Report {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &Report) {
        self.connections += other.connections;
        self.frames += other.frames;
        self.dropped += other.dropped;
        self.failed += other.failed;
        self.busy |= other.busy;
    }
}

/// Sends every connection of `org` what it is owed (see the module docs).
pub async fn run(app: &App, org: &str) -> Result<Report> {
    let mut report = Report::default();
    // Nobody connected: nothing to send, and no lease to take and let go (two writes per
    // event of every organization nobody watches; on the embedded store they queued the next
    // request's commit behind two fsyncs). A connection opening after this look starts a run
    // of its own (its `WS#` item: the table's stream on AWS, the signal in the emulator) that
    // sends it what follows its cursor; the position `seq` left behind only counts for
    // caught-up connections, which a run marks against what it read itself. Only a look: the
    // rounds list again under the lease, as the cursors they send from are the lease holder's
    // to move (a listing from before it could hand a backlog out twice).
    if sockets::list(app, org).await?.is_empty() {
        return Ok(report);
    }
    let holder = hex::encode(rand::random::<[u8; 8]>());
    let Some(mut sent_to) = take_or_ask_again(app, org, &holder).await? else {
        report.busy = true;
        return Ok(report);
    };
    for _ in 0..MAX_ROUNDS {
        let failed_before = report.failed;
        let round = round(app, org, sent_to, &mut report).await;
        let reached = round.as_ref().map_or(sent_to, |r| r.upto.max(sent_to));
        let more = round.as_ref().is_ok_and(|r| r.more) && report.failed == failed_before;
        if more {
            // A backlog not sent whole yet: on with the lease held.
            sent_to = advance(app, org, &holder, reached).await?.ok_or_else(lost)?;
            continue;
        }
        let released = release(app, org, &holder, reached).await?;
        round?;
        if report.failed > failed_before {
            // The gateway refused some pushes: the stream (or the emulator's runner) tries
            // again later rather than this run in a tight loop.
            return Ok(report);
        }
        match released {
            Released::Done | Released::Lost => return Ok(report),
            // A run stopped by our lease asked for another round: what woke it (a new event,
            // a new connection) is ours to send.
            Released::Again(at) => sent_to = at,
        }
    }
    release(app, org, &holder, sent_to).await?;
    Ok(report)
}

fn lost() -> Error {
    Error::Unavailable("the fan-out lease lapsed during the run; the next run goes on".into())
}

/// What one round did.
struct Round {
    /// How far caught-up connections now are.
    upto: i64,
    /// Something is left for another round: a full page was read, or a connection with a
    /// backlog has not reached the others yet.
    more: bool,
}

/// One round of sends under the lease.
async fn round(app: &App, org: &str, sent_to: i64, report: &mut Report) -> Result<Round> {
    let connections = sockets::list(app, org).await?;
    report.connections += connections.len();
    if connections.is_empty() {
        // Nobody to tell: the stream's position is where the next connection starts from.
        let upto = super::counter(app.ports.meta.as_ref(), org).await?;
        return Ok(Round { upto, more: false });
    }
    let from = connections
        .iter()
        .map(|c| if c.caught_up { sent_to } else { c.scope.after })
        .min()
        .unwrap_or(sent_to);
    let events = read_after(app, org, from).await?;
    let upto = events.last().map_or(from, |e| e.seq);
    let reached = upto.max(sent_to);
    let mut more = events.len() >= PAGE;
    let mut access: HashMap<String, Option<(OrgAccess, Role)>> = HashMap::new();
    // Whether a principal may see an event, decided once per round (connections of one token
    // share it: a console open in many tabs, a thousand clients of one bot).
    let mut seen: HashMap<(String, i64), bool> = HashMap::new();
    // Each event's frame, serialised once for every connection that gets it.
    let mut framed: HashMap<i64, Arc<str>> = HashMap::new();
    // Visibility first (it may read the store), then the pushes, concurrently per connection.
    let mut plans = Vec::new();
    for c in connections {
        let start = if c.caught_up { sent_to } else { c.scope.after };
        // Per token: a revoked token loses its sockets as its requests lose their answers.
        let key = c.token_hash.clone();
        if !access.contains_key(&key) {
            let meta = app.ports.meta.as_ref();
            let resolved = if !token_still_valid(meta, &c.token_hash, app.clock.now()).await? {
                None
            } else {
                match OrgAccess::resolve(meta, &c.principal, org).await {
                    Ok(a) => a.require_member().ok().map(|role| (a, role)),
                    Err(Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                }
            };
            access.insert(key.clone(), resolved);
        }
        let Some(Some((org_access, role))) = access.get_mut(&key) else {
            plans.push(Plan { connection: c, frames: Vec::new(), last: start, revoked: true });
            continue;
        };
        let mut frames = Vec::new();
        for e in events.iter().filter(|e| e.seq > start && in_scope(&c, e)) {
            let visible = match seen.get(&(key.clone(), e.seq)) {
                Some(v) => *v,
                None => {
                    let meta = app.ports.meta.as_ref();
                    let v = read::visible(meta, org_access, *role, e).await?;
                    seen.insert((key.clone(), e.seq), v);
                    v
                }
            };
            if visible {
                let frame = framed.entry(e.seq).or_insert_with(|| wire::event_frame(e).into());
                frames.push((e.seq, frame.clone()));
            }
        }
        plans.push(Plan { connection: c, frames, last: upto.max(start), revoked: false });
    }
    // CONCURRENCY connections at a time (each connection's frames one after another).
    let mut outcomes = Vec::with_capacity(plans.len());
    for chunk in plans.chunks(CONCURRENCY) {
        outcomes.extend(futures::future::join_all(chunk.iter().map(|p| deliver(app, p))).await);
    }
    for (plan, outcome) in plans.iter().zip(outcomes) {
        let c = &plan.connection;
        match outcome {
            Delivered::All(n) => {
                report.frames += n;
                if !c.caught_up {
                    // Caught up once it reached where the others are; until then it goes on
                    // from its own cursor (a long backlog takes several rounds).
                    let caught_up = plan.last >= reached;
                    more |= !caught_up;
                    sockets::set_position(app, org, &c.id, plan.last, caught_up).await?;
                }
            }
            Delivered::Gone(n) => {
                report.frames += n;
                report.dropped += 1;
                sockets::close(app, &c.id).await?;
            }
            Delivered::Partly { sent, last } => {
                report.frames += sent;
                report.failed += 1;
                // It missed events at or after this one: it catches up from here next time.
                sockets::set_position(app, org, &c.id, last, false).await?;
            }
        }
    }
    Ok(Round { upto, more })
}

/// What a connection is to be sent this round.
struct Plan {
    connection: Connection,
    /// `(seq, frame)` in order.
    frames: Vec<(i64, Arc<str>)>,
    /// The last event number looked at for it.
    last: i64,
    /// It lost its access: told so and closed.
    revoked: bool,
}

enum Delivered {
    /// Every frame (how many).
    All(usize),
    /// The connection is gone (frames sent before).
    Gone(usize),
    /// A push failed: frames sent, and the last event it got for sure.
    Partly { sent: usize, last: i64 },
}

async fn deliver(app: &App, plan: &Plan) -> Delivered {
    let push = app.ports.push.as_ref();
    let id = plan.connection.id.as_str();
    if plan.revoked {
        let why = "the access token was revoked or expired, or access to the organization ended";
        let _ = push.send(id, &wire::closing_frame(why)).await;
        let _ = push.close(id).await;
        return Delivered::Gone(0);
    }
    let mut before =
        if plan.connection.caught_up { None } else { Some(plan.connection.scope.after) };
    for (sent, (seq, frame)) in plan.frames.iter().enumerate() {
        match push.send(id, frame).await {
            Ok(()) => before = Some(*seq),
            Err(PushError::Gone(_)) => return Delivered::Gone(sent),
            Err(e) => {
                tracing::warn!(connection = id, error = %e, "push failed; the connection catches up next time");
                let last = before.unwrap_or(*seq - 1);
                return Delivered::Partly { sent, last };
            }
        }
    }
    Delivered::All(plan.frames.len())
}

/// Whether an event is in a connection's scope (visibility aside).
fn in_scope(c: &Connection, e: &Event) -> bool {
    if let Some(id) = &c.scope.stack_id {
        if e.stack.as_ref().is_none_or(|s| s.id != id.as_str()) {
            return false;
        }
    }
    match &c.scope.update_id {
        None => true,
        Some(update) => {
            e.payload.get("updateId").and_then(|v| v.as_str()) == Some(update.as_str())
                || e.path.split('/').any(|part| part == update.as_str())
        }
    }
}

/// Up to a page of `org`'s events after `after`, in order.
async fn read_after(app: &App, org: &str, after: i64) -> Result<Vec<Event>> {
    let query = Query {
        pk: feed_pk(org),
        sk: SortKey::BeginsWith(EVENT_PREFIX.to_string()),
        ascending: true,
        limit: PAGE,
        after: Some(super::event_sk(after)),
    };
    Ok(app.ports.meta.query(query).await?.items.iter().map(Event::from_item).collect())
}

/// Takes the organization's fan-out lease and returns how far caught-up connections got; or,
/// when another run holds it, asks that run for another round (`again`) and returns None.
///
/// The caller's events are stored before it gets here, so any run that takes the lease from
/// now on reads them. That bounds the race: if the holder let go between our failed take and
/// our ask, a second failed take means another run took the lease since, and it delivers ours.
async fn take_or_ask_again(app: &App, org: &str, holder: &str) -> Result<Option<i64>> {
    if let Some(seq) = try_take(app, org, holder).await? {
        return Ok(Some(seq));
    }
    // Held: the holder looks at `again` before it lets go. Only while it still holds it.
    let ask = Update::new(item_keys::sockets_pk(org), item_keys::FANOUT_SK)
        .set("again", Value::Bool(true))
        .when(Condition::AtLeast("until".into(), Value::N(app.clock.now())));
    match app.ports.meta.update(ask).await {
        Ok(_) => Ok(None),
        // It let go meanwhile: take it ourselves, or leave it to whoever took it since.
        Err(MetaError::ConditionFailed) => try_take(app, org, holder).await,
        Err(e) => Err(e.into()),
    }
}

/// Takes the fan-out lease if nobody holds it; returns how far caught-up connections got.
async fn try_take(app: &App, org: &str, holder: &str) -> Result<Option<i64>> {
    let now = app.clock.now();
    let take = Update::new(item_keys::sockets_pk(org), item_keys::FANOUT_SK)
        .set("holder", Value::S(holder.to_string()))
        .set("until", Value::N(now + LEASE_SECONDS))
        .set("again", Value::Bool(false))
        .when(
            Condition::AttrNotExists("until".into())
                .or(Condition::LessThan("until".into(), Value::N(now))),
        );
    match app.ports.meta.update(take).await {
        Ok(item) => Ok(Some(item.n("seq").unwrap_or(0))),
        Err(MetaError::ConditionFailed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records how far caught-up connections got, keeping the lease (None: it lapsed and another
/// run took it).
async fn advance(app: &App, org: &str, holder: &str, sent_to: i64) -> Result<Option<i64>> {
    let change = Update::new(item_keys::sockets_pk(org), item_keys::FANOUT_SK)
        .set("seq", Value::N(sent_to))
        .set("until", Value::N(app.clock.now() + LEASE_SECONDS))
        .set("again", Value::Bool(false))
        .when(Condition::Equals("holder".into(), Value::S(holder.to_string())));
    match app.ports.meta.update(change).await {
        Ok(_) => Ok(Some(sent_to)),
        Err(MetaError::ConditionFailed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How letting go of the lease went.
enum Released {
    /// Let go: nothing was asked meanwhile.
    Done,
    /// Another run asked for a round while we held it: still held, go on from here.
    Again(i64),
    /// It had lapsed and another run took it (which repeats what we did).
    Lost,
}

/// Records how far caught-up connections got and lets the lease go, unless another run asked
/// for another round meanwhile.
async fn release(app: &App, org: &str, holder: &str, sent_to: i64) -> Result<Released> {
    let ours = Condition::Equals("holder".into(), Value::S(holder.to_string()));
    let change = Update::new(item_keys::sockets_pk(org), item_keys::FANOUT_SK)
        .set("seq", Value::N(sent_to))
        .set("until", Value::N(0))
        .when(ours.and(Condition::Equals("again".into(), Value::Bool(false))));
    match app.ports.meta.update(change).await {
        Ok(_) => Ok(Released::Done),
        // Asked again, or no longer ours: `advance` tells which.
        Err(MetaError::ConditionFailed) => Ok(match advance(app, org, holder, sent_to).await? {
            Some(at) => Released::Again(at),
            None => Released::Lost,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Sends the engine events of one `events/batch` of a running update to the connections that
/// watch it, as one ephemeral frame each; forgets the ones that are gone. Never fails the
/// batch: the events are stored either way and watchers can read them back.
pub async fn engine_events(app: &App, update: &UpdateId, events: &[&RawValue]) {
    if events.is_empty() {
        return;
    }
    let watchers = match sockets::watchers(app, update).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(update = %update, error = %e, "listing the update's watchers failed");
            return;
        }
    };
    if watchers.is_empty() {
        return;
    }
    let frame = wire::engine_events_frame(update.as_str(), events);
    let (push, frame) = (app.ports.push.as_ref(), &frame);
    let sends = watchers.iter().map(|id| async move {
        match push.send(id, frame).await {
            Ok(()) => {}
            Err(PushError::Gone(_)) => {
                let _ = sockets::close(app, id).await;
            }
            Err(e) => tracing::warn!(connection = %id, error = %e, "engine events not pushed"),
        }
    });
    futures::future::join_all(sends).await;
}
