//! Deployment schedules (Pulumi Cloud's `ScheduledAction` of kind `deployment`): a stack's
//! runs made on a cron pattern or once at a moment. Three ways to define one, all stored the
//! same way — as the `CreateDeploymentRequest` each run is made with:
//! * raw (`…/deployments/schedules`): any request;
//! * drift (`…/deployments/drift/schedules`): `detect-drift`, with
//!   `operationContext.options.remediateIfDriftDetected`;
//! * TTL (`…/deployments/ttl/schedules`): `destroy` once, always with
//!   `operationContext.options` (clients tell a TTL schedule by it), `deleteAfterDestroy` there.
//!
//! `job-deployment-scheduler` makes the runs ([`super::scheduler`]).
//!
//! Items (docs/ARCHITECTURE.md, Data model):
//! * the schedule: `SCHED#<id>`/`SCHEDULE`, with `next`, the window cursor: the first window
//!   not made into a run yet;
//! * its history: `SCHED#<id>`/`HIST#<window, 12 digits>`, one per window it fired;
//! * listings: `STACK#<stack id>`/`SCHED#<id>`, and `SYS#SCHEDULES`/`<id>` for the scheduler.

use serde_json::{json, Value as Json};

use super::cron::{parse_moment, Cron};
use super::runs::{op_str, Request, Requester};
use super::Operation;
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, TransactOp, Value};
use crate::service::access::query_all;
use crate::service::identity::Principal;
use crate::service::item_keys;
use crate::service::optimistic::{retry_on_conflict, written};
use crate::service::stacks::Stack;

pub(super) const SCHEDULE_SK: &str = "SCHEDULE";
pub(super) const HISTORY_PREFIX: &str = "HIST#";
const LISTING_PREFIX: &str = "SCHED#";
/// Partition of every schedule (sort key: its id), which the scheduler reads.
pub(super) const INDEX_PK: &str = "SYS#SCHEDULES";
/// Most schedules one stack may have: a rename rewrites them all in its one transaction
/// (DynamoDB takes at most 100 items in one).
const MAX_PER_STACK: usize = 50;

pub(super) fn schedule_pk(id: &str) -> String {
    format!("SCHED#{id}")
}

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// A 5-field pattern (maybe with `CRON_TZ=`), as given.
    Cron(String),
    /// Once, at this Unix second.
    Once(i64),
}

impl Timing {
    /// The first window strictly after `after`; None when there is none.
    pub fn next_after(&self, after: i64) -> Result<Option<i64>> {
        Ok(match self {
            Timing::Cron(text) => Cron::parse(text)?.next_after(after),
            Timing::Once(at) => (*at > after).then_some(*at),
        })
    }
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: String,
    pub org: String,
    pub project: String,
    pub stack: String,
    pub stack_id: String,
    pub timing: Timing,
    /// The `CreateDeploymentRequest` each run is made with.
    pub request: Json,
    pub paused: bool,
    pub created: i64,
    pub modified: i64,
    pub last_executed: Option<i64>,
    /// The window cursor: the first window not made into a run yet; None: it fires no more.
    pub next: Option<i64>,
    /// Counts definitions (1 when created, +1 per update).
    pub version: i64,
    pub requested_by: String,
    pub(super) requester: Requester,
}

impl Schedule {
    pub(super) fn item(&self) -> Result<Item> {
        let request = serde_json::to_string(&self.request).map_err(|e| {
            Error::internal(format!("a schedule's request does not serialise: {e}"))
        })?;
        let mut item = Item::new(schedule_pk(&self.id), SCHEDULE_SK)
            .with("org", Value::S(self.org.clone()))
            .with("project", Value::S(self.project.clone()))
            .with("stack", Value::S(self.stack.clone()))
            .with("stack_id", Value::S(self.stack_id.clone()))
            .with("request", Value::S(request))
            .with("paused", Value::Bool(self.paused))
            .with("created", Value::N(self.created))
            .with("modified", Value::N(self.modified))
            .with("version", Value::N(self.version))
            .with("requested_by", Value::S(self.requested_by.clone()));
        match &self.timing {
            Timing::Cron(c) => item.set("cron", Value::S(c.clone())),
            Timing::Once(t) => item.set("once", Value::N(*t)),
        }
        if let Some(t) = self.last_executed {
            item.set("last_executed", Value::N(t));
        }
        if let Some(t) = self.next {
            item.set("next", Value::N(t));
        }
        self.requester.write(&mut item, "req_");
        Ok(item)
    }

    fn from_item(id: &str, item: &Item) -> Result<Schedule> {
        let corrupt = |what: &str| Error::internal(format!("schedule {id} lacks {what}"));
        let text = |k: &str| item.s(k).map(str::to_string).ok_or_else(|| corrupt(k));
        let timing = match (item.s("cron"), item.n("once")) {
            (Some(c), _) => Timing::Cron(c.to_string()),
            (None, Some(t)) => Timing::Once(t),
            (None, None) => return Err(corrupt("a timing")),
        };
        let request = serde_json::from_str(&text("request")?)
            .map_err(|e| Error::internal(format!("schedule {id}'s request does not read: {e}")))?;
        Ok(Schedule {
            id: id.to_string(),
            org: text("org")?,
            project: text("project")?,
            stack: text("stack")?,
            stack_id: text("stack_id")?,
            timing,
            request,
            paused: item.bool("paused") == Some(true),
            created: item.n("created").unwrap_or(0),
            modified: item.n("modified").unwrap_or(0),
            last_executed: item.n("last_executed"),
            next: item.n("next"),
            version: item.n("version").unwrap_or(1),
            requested_by: text("requested_by")?,
            requester: Requester::read(item, "req_").ok_or_else(|| corrupt("a requester"))?,
        })
    }

    /// The operation its runs run.
    pub fn operation(&self) -> Option<Operation> {
        self.request["operation"].as_str().and_then(super::runs::parse_op)
    }
}

/// A schedule's definition as a client sends it, read and checked.
#[derive(Debug, Clone)]
pub struct Definition {
    pub timing: Timing,
    pub request: Json,
}

fn object(body: &Json) -> Result<&serde_json::Map<String, Json>> {
    body.as_object().ok_or_else(|| Error::BadRequest("a schedule is a JSON object".into()))
}

fn flag(fields: &serde_json::Map<String, Json>, key: &str) -> Result<bool> {
    match fields.get(key) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::BadRequest(format!("{key} is a boolean"))),
    }
}

fn text<'a>(fields: &'a serde_json::Map<String, Json>, key: &str) -> Result<Option<&'a str>> {
    match fields.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::BadRequest(format!("{key} is a string"))),
    }
}

/// A moment in the future (400 when past).
fn future(field: &str, text: &str, now: i64) -> Result<i64> {
    let at = parse_moment(field, text)?;
    if at <= now {
        return Err(Error::BadRequest(format!("{field} {text:?} is not in the future")));
    }
    Ok(at)
}

impl Definition {
    /// `CreateScheduledDeploymentRequest`: `scheduleCron` or `scheduleOnce`, and `request`.
    pub fn raw(body: &Json, now: i64) -> Result<Definition> {
        let fields = object(body)?;
        let timing = match (text(fields, "scheduleCron")?, text(fields, "scheduleOnce")?) {
            (Some(c), None) => {
                Cron::parse(c)?;
                Timing::Cron(c.to_string())
            }
            (None, Some(t)) => Timing::Once(future("scheduleOnce", t, now)?),
            _ => {
                return Err(Error::BadRequest(
                    "Invalid definition for scheduled deployment: set either scheduleCron or scheduleOnce".into(),
                ))
            }
        };
        let request = fields.get("request").cloned().unwrap_or(Json::Null);
        let parsed = Request::parse(request.clone())?;
        super::settings::parse(&parsed.overrides)?;
        Ok(Definition { timing, request })
    }

    /// `CreateScheduledDriftDeploymentRequest`: `scheduleCron`, `autoRemediate`.
    pub fn drift(body: &Json) -> Result<Definition> {
        let fields = object(body)?;
        let cron = text(fields, "scheduleCron")?.ok_or_else(|| {
            Error::BadRequest("Invalid schedule: scheduleCron is required".into())
        })?;
        Cron::parse(cron)?;
        let remediate = flag(fields, "autoRemediate")?;
        Ok(Definition {
            timing: Timing::Cron(cron.to_string()),
            request: json!({
                "operation": op_str(Operation::DetectDrift),
                "inheritSettings": true,
                "operationContext": {"options": {"remediateIfDriftDetected": remediate}},
            }),
        })
    }

    /// `CreateScheduledTTLDeploymentRequest`: `timestamp`, `deleteAfterDestroy`.
    pub fn ttl(body: &Json, now: i64) -> Result<Definition> {
        let fields = object(body)?;
        let at = text(fields, "timestamp")?
            .ok_or_else(|| Error::BadRequest("timestamp needs to be set".into()))?;
        let at = future("timestamp", at, now)?;
        let delete = flag(fields, "deleteAfterDestroy")?;
        Ok(Definition {
            timing: Timing::Once(at),
            request: json!({
                "operation": op_str(Operation::Destroy),
                "inheritSettings": true,
                "operationContext": {"options": {"deleteAfterDestroy": delete}},
            }),
        })
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("schedule {id} not found"))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Reads a schedule; None when there is none.
pub async fn find(meta: &dyn MetadataStore, id: &str) -> Result<Option<Schedule>> {
    if !valid_id(id) {
        return Ok(None);
    }
    match meta.get(&schedule_pk(id), SCHEDULE_SK).await? {
        Some(item) => Schedule::from_item(id, &item).map(Some),
        None => Ok(None),
    }
}

/// Reads a schedule of `stack`, or 404 (also for another stack's).
pub async fn get_of(meta: &dyn MetadataStore, stack: &Stack, id: &str) -> Result<Schedule> {
    match find(meta, id).await? {
        Some(s) if s.stack_id == stack.id.as_str() => Ok(s),
        _ => Err(not_found(id)),
    }
}

/// Creating or changing a schedule needs the stack's deployment settings, and a person's token.
async fn may_define(app: &App, stack: &Stack, caller: &Principal) -> Result<()> {
    if caller.deployment.is_some() {
        return Err(Error::Forbidden("a deployment cannot schedule deployments".into()));
    }
    if super::settings::get(app, stack.id.as_str()).await?.is_none() {
        return Err(Error::BadRequest("Stack does not have deployment settings configured".into()));
    }
    Ok(())
}

/// Creates a schedule of `stack` (its runs act as `caller`).
pub async fn create(
    app: &App,
    stack: &Stack,
    caller: &Principal,
    def: Definition,
) -> Result<Schedule> {
    may_define(app, stack, caller).await?;
    let meta = app.ports.meta.as_ref();
    let sid = stack.id.as_str();
    let listing = Query::prefix(item_keys::stack_id_pk(sid), LISTING_PREFIX, 1000);
    if query_all(meta, listing).await?.len() >= MAX_PER_STACK {
        return Err(Error::BadRequest(format!("a stack has at most {MAX_PER_STACK} schedules")));
    }
    let now = app.clock.now();
    let schedule = Schedule {
        id: new_id(),
        org: stack.org.clone(),
        project: stack.project.clone(),
        stack: stack.stack.clone(),
        stack_id: sid.to_string(),
        next: def.timing.next_after(now)?,
        timing: def.timing,
        request: def.request,
        paused: false,
        created: now,
        modified: now,
        last_executed: None,
        version: 1,
        requested_by: caller.login().to_string(),
        requester: Requester::of(caller),
    };
    meta.transact(vec![
        TransactOp::Put(schedule.item()?, Some(Condition::NotExists)),
        TransactOp::Put(
            Item::new(item_keys::stack_id_pk(sid), format!("{LISTING_PREFIX}{}", schedule.id)),
            None,
        ),
        TransactOp::Put(Item::new(INDEX_PK, schedule.id.clone()), None),
    ])
    .await?;
    Ok(schedule)
}

/// Replaces a schedule's definition (its runs now act as `caller`); windows are counted from
/// now. 404 when `stack` has no such schedule.
pub async fn update(
    app: &App,
    stack: &Stack,
    id: &str,
    caller: &Principal,
    def: Definition,
) -> Result<Schedule> {
    may_define(app, stack, caller).await?;
    let meta = app.ports.meta.as_ref();
    let outcome = retry_on_conflict!(8, async {
        let old = get_of(meta, stack, id).await?;
        let now = app.clock.now();
        let new = Schedule {
            next: def.timing.next_after(now)?,
            timing: def.timing.clone(),
            request: def.request.clone(),
            modified: now,
            version: old.version + 1,
            requested_by: caller.login().to_string(),
            requester: Requester::of(caller),
            ..old.clone()
        };
        let cond = Condition::Equals("version".into(), Value::N(old.version));
        written(meta.put(new.item()?, Some(cond)).await, new)
    })?;
    outcome.ok_or_else(|| Error::Conflict("the schedule changed meanwhile; try again".into()))
}

/// Pauses (no runs until resumed) or resumes a schedule. A resumed cron schedule goes on
/// from now: the windows it missed while paused are not made up.
pub async fn set_paused(app: &App, stack: &Stack, id: &str, pause: bool) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let outcome = retry_on_conflict!(8, async {
        let old = get_of(meta, stack, id).await?;
        if old.paused == pause {
            return Ok(crate::service::optimistic::Attempt::Done(()));
        }
        let now = app.clock.now();
        let next = match (&old.timing, pause) {
            (Timing::Cron(_), false) => old.timing.next_after(now)?,
            _ => old.next,
        };
        let new = Schedule { paused: pause, next, modified: now, ..old.clone() };
        let cond = Condition::Equals("modified".into(), Value::N(old.modified))
            .and(Condition::Equals("version".into(), Value::N(old.version)));
        written(meta.put(new.item()?, Some(cond)).await, ())
    })?;
    outcome.ok_or_else(|| Error::Conflict("the schedule changed meanwhile; try again".into()))
}

/// Deletes a schedule and its history; done also when there is none (a one-time schedule
/// removes itself once it fired).
pub async fn delete(app: &App, stack: &Stack, id: &str) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    match find(meta, id).await? {
        Some(s) if s.stack_id == stack.id.as_str() => {}
        _ => return Ok(()),
    }
    meta.transact(vec![
        TransactOp::Delete { pk: schedule_pk(id), sk: SCHEDULE_SK.into(), condition: None },
        TransactOp::Delete {
            pk: item_keys::stack_id_pk(stack.id.as_str()),
            sk: format!("{LISTING_PREFIX}{id}"),
            condition: None,
        },
        TransactOp::Delete { pk: INDEX_PK.into(), sk: id.to_string(), condition: None },
    ])
    .await?;
    for h in query_all(meta, Query::prefix(schedule_pk(id), HISTORY_PREFIX, 500)).await? {
        meta.delete(&h.pk, &h.sk, None).await?;
    }
    Ok(())
}

/// The writes that give every schedule of stack `stack_id` its new names, for the rename's
/// own transaction (the scheduler finds a schedule's stack by its names): each conditional on
/// the schedule being as read, so a schedule changed or fired meanwhile fails the rename's
/// try, and its next try reads it again.
pub(crate) async fn renamed_ops(
    meta: &dyn MetadataStore,
    stack_id: &str,
    project: &str,
    stack: &str,
) -> Result<Vec<TransactOp>> {
    let listing = Query::prefix(item_keys::stack_id_pk(stack_id), LISTING_PREFIX, 1000);
    let mut ops = Vec::new();
    for entry in query_all(meta, listing).await? {
        let Some(old) = find(meta, entry.sk.trim_start_matches(LISTING_PREFIX)).await? else {
            continue;
        };
        let next = match old.next {
            Some(n) => Condition::Equals("next".into(), Value::N(n)),
            None => Condition::AttrNotExists("next".into()),
        };
        let cond = Condition::Equals("version".into(), Value::N(old.version))
            .and(Condition::Equals("modified".into(), Value::N(old.modified)))
            .and(Condition::Equals("paused".into(), Value::Bool(old.paused)))
            .and(next);
        let new = Schedule { project: project.to_string(), stack: stack.to_string(), ..old };
        ops.push(TransactOp::Put(new.item()?, Some(cond)));
    }
    Ok(ops)
}

/// The schedules of a stack, oldest first.
pub async fn list(meta: &dyn MetadataStore, stack: &Stack) -> Result<Vec<Schedule>> {
    let listing = Query::prefix(item_keys::stack_id_pk(stack.id.as_str()), LISTING_PREFIX, 1000);
    let mut out = Vec::new();
    for item in query_all(meta, listing).await? {
        let id = item.sk.trim_start_matches(LISTING_PREFIX);
        if let Some(s) = find(meta, id).await? {
            out.push(s);
        }
    }
    out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(out)
}

/// One window a schedule fired (`ScheduledActionHistoryEvent`, with the run it made).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub schedule: String,
    /// The window (Unix seconds).
    pub executed: i64,
    /// The schedule's version then.
    pub version: i64,
    /// `succeeded` (a run was made) or `failed` (none could be: `message` says why).
    pub result: String,
    pub deployment: Option<String>,
    pub message: Option<String>,
}

impl HistoryEvent {
    pub(super) fn item(&self) -> Item {
        let mut item = Item::new(
            schedule_pk(&self.schedule),
            format!("{HISTORY_PREFIX}{:012}", self.executed),
        )
        .with("executed", Value::N(self.executed))
        .with("version", Value::N(self.version))
        .with("result", Value::S(self.result.clone()));
        if let Some(d) = &self.deployment {
            item.set("deployment", Value::S(d.clone()));
        }
        if let Some(m) = &self.message {
            item.set("message", Value::S(m.clone()));
        }
        item
    }
}

/// A schedule's history, newest first.
pub async fn history(meta: &dyn MetadataStore, schedule: &Schedule) -> Result<Vec<HistoryEvent>> {
    let mut q = Query::prefix(schedule_pk(&schedule.id), HISTORY_PREFIX, 500);
    q.ascending = false;
    Ok(query_all(meta, q)
        .await?
        .iter()
        .map(|i| HistoryEvent {
            schedule: schedule.id.clone(),
            executed: i.n("executed").unwrap_or(0),
            version: i.n("version").unwrap_or(0),
            result: i.s("result").unwrap_or_default().to_string(),
            deployment: i.s("deployment").map(str::to_string),
            message: i.s("message").map(str::to_string),
        })
        .collect())
}

/// A new schedule id: a UUID, as Pulumi Cloud's are, of version 7 (its first 48 bits are the
/// Unix milliseconds of the machine's clock), so schedules made in the same second still list
/// in the order they were made.
fn new_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut b: [u8; 16] = rand::random();
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_900_000_000;

    #[test]
    fn raw_definitions_take_exactly_one_timing_and_a_request() {
        let d = Definition::raw(
            &json!({"scheduleCron": "0 * * * *", "request": {"operation": "update"}}),
            NOW,
        )
        .unwrap();
        assert_eq!(d.timing, Timing::Cron("0 * * * *".into()));
        let later = "2031-01-01T00:00:00Z";
        let d = Definition::raw(
            &json!({"scheduleOnce": later, "request": {"operation": "preview"}}),
            NOW,
        )
        .unwrap();
        assert_eq!(d.timing, Timing::Once(parse_moment("t", later).unwrap()));
        for bad in [
            json!({"request": {"operation": "update"}}),
            json!({"scheduleCron": "0 * * * *", "scheduleOnce": later, "request": {"operation": "update"}}),
            json!({"scheduleCron": "0 * * * *"}),
            json!({"scheduleCron": "0 * * * *", "request": {"operation": "explode"}}),
            json!({"scheduleCron": "nope", "request": {"operation": "update"}}),
            json!({"scheduleOnce": "2001-01-01T00:00:00Z", "request": {"operation": "update"}}),
            json!({"scheduleCron": 5, "request": {"operation": "update"}}),
            json!([]),
        ] {
            assert_eq!(Definition::raw(&bad, NOW).unwrap_err().status().as_u16(), 400, "{bad}");
        }
    }

    #[test]
    fn drift_and_ttl_definitions_are_requests_clients_can_tell_apart() {
        let d = Definition::drift(&json!({"scheduleCron": "0 */4 * * *", "autoRemediate": true}))
            .unwrap();
        assert_eq!(d.request["operation"], "detect-drift");
        assert_eq!(d.request["operationContext"]["options"]["remediateIfDriftDetected"], true);
        let d = Definition::ttl(&json!({"timestamp": "2031-01-01T00:00:00Z"}), NOW).unwrap();
        assert_eq!(d.request["operation"], "destroy");
        // Present even when false: that is how a TTL schedule is told from a raw destroy.
        assert_eq!(d.request["operationContext"]["options"]["deleteAfterDestroy"], false);
        assert!(matches!(d.timing, Timing::Once(_)));
        assert_eq!(Definition::drift(&json!({})).unwrap_err().status().as_u16(), 400);
        assert_eq!(Definition::ttl(&json!({}), NOW).unwrap_err().status().as_u16(), 400);
        let past = json!({"timestamp": "2001-01-01T00:00:00Z"});
        assert_eq!(Definition::ttl(&past, NOW).unwrap_err().status().as_u16(), 400);
    }

    #[test]
    fn ids_are_time_ordered_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "7", "version 7: {id}");
        assert!(valid_id(&id));
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(new_id() > id, "later ids sort after");
    }
}
