//! Deployment runs (`POST …/deployments` and what follows; starting, pausing and reaping
//! them is [`super::dispatch`], what their runners report [`super::report`]): a run is
//! created `not-started`
//! with a message on the `deployments` queue; `job-deployment-start` takes the stack's one
//! run slot (queued runs wait), mints the run's short-lived token and has the launcher start a
//! runner; the runner claims the run (`running`), streams its log, and completes it
//! (`succeeded` or `failed`), which frees the slot and revokes the token.
//!
//! Items (docs/ARCHITECTURE.md, Data model):
//! * the run: `DEPLOY#<id>`/`RUN` — everything about it, its settings as run (sealed);
//! * its log: `DEPLOY#<id>`/`LOG#<chunk, 8 digits>`, one item per chunk the runner sent,
//!   written create-if-absent at the chunk number the runner gives, so a retried send stores
//!   nothing twice;
//! * listings: `STACK#<stack id>`/`DEPLOY#<version, 10 digits>` and
//!   `ORG#<org>`/`DEPLOY#<created, 12 digits>#<id>`, written with the run;
//! * per stack: `DEPLOYSEQ` (the last version) and `DEPLOYACTIVE` (the run holding the slot).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::settings::{self, Settings};
use super::Operation;
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::{OrgName, ProjectName, StackName, StackRef};
use crate::ports::{Condition, Item, MetadataStore, Query, TransactOp, Update, Value};
use crate::service::access::query_all;
use crate::service::identity::{self, Principal, Subject};
use crate::service::item_keys;
use crate::service::optimistic::{retry_on_conflict, written};
use crate::service::stacks::{self, Stack};

/// Logical name of the queue of runs to start (`job-deployment-start`).
pub use crate::ports::queue::DEPLOYMENTS_QUEUE;

pub(super) const RUN_SK: &str = "RUN";
pub(super) const LOG_PREFIX: &str = "LOG#";
/// Sort-key prefix of the updates a run made (see [`made_by`]).
const MADE_PREFIX: &str = "UPD#";
const LISTING_PREFIX: &str = "DEPLOY#";
const SEQ_SK: &str = "DEPLOYSEQ";
pub(super) const ACTIVE_SK: &str = "DEPLOYACTIVE";
/// Sort key of the pause flag, under the stack's id partition or the organization's.
pub(super) const PAUSED_SK: &str = "DEPLOYPAUSED";
/// How long a run of a paused stack waits before it looks again.
pub const PAUSED_RETRY_SECONDS: u64 = 30;
/// Partition of the runs not ended yet (sort key: the id), for the reaper.
pub(super) const LIVE_PK: &str = "SYS#DEPLOYRUNS";
/// A run whose runner has not reported for this long is failed by the reaper (the runner
/// reports at least every 10 s while it runs).
pub const STALE_SECONDS: i64 = 120;
/// A run still waiting this long while its stack's slot is free lost its queue message: the
/// reaper sends it again.
pub const REQUEUE_SECONDS: i64 = 120;
/// How long a run's token lives: longer than any run should take.
pub const TOKEN_SECONDS: i64 = 4 * 3600;
/// How long a queued run waits before it looks at its stack's slot again.
pub const BUSY_RETRY_SECONDS: u64 = 5;
/// Most lines in one log chunk, and longest line kept.
pub(super) const MAX_CHUNK_LINES: usize = 1000;
pub(super) const MAX_LINE: usize = 4096;

pub(super) fn run_pk(id: &str) -> String {
    format!("DEPLOY#{id}")
}

/// `JobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum Status {
    NotStarted,
    Accepted,
    Running,
    Failed,
    Succeeded,
}

impl Status {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "not-started",
            Status::Accepted => "accepted",
            Status::Running => "running",
            Status::Failed => "failed",
            Status::Succeeded => "succeeded",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::NotStarted, Status::Accepted, Status::Running, Status::Failed, Status::Succeeded]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// Whether the run has ended.
    pub fn ended(self) -> bool {
        matches!(self, Status::Failed | Status::Succeeded)
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: String,
    pub org: String,
    pub project: String,
    pub stack: String,
    pub stack_id: String,
    pub version: i64,
    pub operation: Operation,
    pub status: Status,
    /// Unix seconds.
    pub created: i64,
    pub modified: i64,
    pub started: Option<i64>,
    pub ended: Option<i64>,
    /// Who asked (their login) and what the run's token acts as.
    pub requested_by: String,
    pub(super) requester: Requester,
    /// The settings the run uses (sealed), as JSON.
    pub settings: String,
    /// Cancel was asked for.
    pub cancel: bool,
    /// Why it failed.
    pub message: Option<String>,
    /// The hash of the run's token while it runs.
    pub(super) token_hash: Option<String>,
    /// The stack's version when the run was created: the updates it made come after.
    pub stack_version: i64,
    /// When its runner last reported (Unix seconds).
    pub heartbeat: Option<i64>,
    /// A `detect-drift` run that succeeded: what it found ([`super::drift`]).
    pub drift: Option<super::drift::Found>,
    /// The `remediate-drift` run a drift run started.
    pub remediation: Option<String>,
}

/// What the requester's token acted as: the run's token acts as the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Requester {
    User(String),
    Org { org: String, admin: bool },
    Team { org: String, team: String },
}

impl Requester {
    pub(super) fn of(p: &Principal) -> Requester {
        match &p.subject {
            Subject::User(u) => Requester::User(u.clone()),
            Subject::Org { org, admin } => Requester::Org { org: org.clone(), admin: *admin },
            Subject::Team { org, team } => Requester::Team { org: org.clone(), team: team.clone() },
        }
    }

    pub(super) fn write(&self, item: &mut Item, prefix: &str) {
        let (kind, a, b) = match self {
            Requester::User(u) => (identity::TOKEN_KIND_PERSONAL, u.clone(), String::new()),
            Requester::Org { org, admin } => (
                identity::TOKEN_KIND_ORG,
                org.clone(),
                if *admin { "admin".into() } else { String::new() },
            ),
            Requester::Team { org, team } => (identity::TOKEN_KIND_TEAM, org.clone(), team.clone()),
        };
        item.set(&format!("{prefix}kind"), Value::S(kind.into()));
        item.set(&format!("{prefix}a"), Value::S(a));
        item.set(&format!("{prefix}b"), Value::S(b));
    }

    pub(super) fn read(item: &Item, prefix: &str) -> Option<Requester> {
        let a = item.s(&format!("{prefix}a"))?.to_string();
        let b = item.s(&format!("{prefix}b")).unwrap_or_default().to_string();
        Some(match item.s(&format!("{prefix}kind"))? {
            identity::TOKEN_KIND_PERSONAL => Requester::User(a),
            identity::TOKEN_KIND_ORG => Requester::Org { org: a, admin: b == "admin" },
            identity::TOKEN_KIND_TEAM => Requester::Team { org: a, team: b },
            _ => return None,
        })
    }

    /// The token item of a run's token acting as this requester.
    pub(super) fn token_item(&self, hash: &str, run: &Run, expires: i64) -> Item {
        let mut item = Item::new(item_keys::token_pk(hash), item_keys::TOKEN_SK)
            .with("id", Value::S(identity::token_id(hash)))
            .with("name", Value::S(format!("deployment {}", run.id)))
            .with("expires", Value::N(expires))
            .with("deployment", Value::S(run.id.clone()))
            .with("scope_org", Value::S(run.org.clone()))
            .with("scope_stack", Value::S(run.stack_id.clone()));
        match self {
            Requester::User(u) => {
                item.set("kind", Value::S(identity::TOKEN_KIND_PERSONAL.into()));
                item.set("user", Value::S(u.clone()));
            }
            Requester::Org { org, admin } => {
                item.set("kind", Value::S(identity::TOKEN_KIND_ORG.into()));
                item.set("org", Value::S(org.clone()));
                item.set("admin", Value::Bool(*admin));
            }
            Requester::Team { org, team } => {
                item.set("kind", Value::S(identity::TOKEN_KIND_TEAM.into()));
                item.set("org", Value::S(org.clone()));
                item.set("team", Value::S(team.clone()));
            }
        }
        item
    }
}

impl Run {
    pub(super) fn item(&self) -> Item {
        let mut item = Item::new(run_pk(&self.id), RUN_SK)
            .with("org", Value::S(self.org.clone()))
            .with("project", Value::S(self.project.clone()))
            .with("stack", Value::S(self.stack.clone()))
            .with("stack_id", Value::S(self.stack_id.clone()))
            .with("version", Value::N(self.version))
            .with("operation", Value::S(op_str(self.operation)))
            .with("status", Value::S(self.status.as_str().into()))
            .with("created", Value::N(self.created))
            .with("modified", Value::N(self.modified))
            .with("requested_by", Value::S(self.requested_by.clone()))
            .with("settings", Value::S(self.settings.clone()))
            .with("cancel", Value::Bool(self.cancel))
            .with("stack_version", Value::N(self.stack_version));
        self.requester.write(&mut item, "req_");
        for (k, v) in
            [("started", self.started), ("ended", self.ended), ("heartbeat", self.heartbeat)]
        {
            if let Some(v) = v {
                item.set(k, Value::N(v));
            }
        }
        if let Some(found) = &self.drift {
            found.write(&mut item);
        }
        for (k, v) in [
            ("message", &self.message),
            ("token_hash", &self.token_hash),
            ("remediation", &self.remediation),
        ] {
            if let Some(v) = v {
                item.set(k, Value::S(v.clone()));
            }
        }
        item
    }

    fn from_item(id: &str, item: &Item) -> Result<Run> {
        let corrupt = |what: &str| Error::internal(format!("deployment {id} lacks {what}"));
        let text = |k: &str| item.s(k).map(str::to_string).ok_or_else(|| corrupt(k));
        Ok(Run {
            id: id.to_string(),
            org: text("org")?,
            project: text("project")?,
            stack: text("stack")?,
            stack_id: text("stack_id")?,
            version: item.n("version").unwrap_or(0),
            operation: parse_op(item.s("operation").unwrap_or_default())
                .ok_or_else(|| corrupt("an operation"))?,
            status: Status::parse(item.s("status").unwrap_or_default())
                .ok_or_else(|| corrupt("a status"))?,
            created: item.n("created").unwrap_or(0),
            modified: item.n("modified").unwrap_or(0),
            started: item.n("started"),
            ended: item.n("ended"),
            requested_by: text("requested_by")?,
            requester: Requester::read(item, "req_").ok_or_else(|| corrupt("a requester"))?,
            settings: text("settings")?,
            cancel: item.bool("cancel") == Some(true),
            message: item.s("message").map(str::to_string),
            token_hash: item.s("token_hash").map(str::to_string),
            stack_version: item.n("stack_version").unwrap_or(0),
            heartbeat: item.n("heartbeat"),
            drift: super::drift::Found::read(item),
            remediation: item.s("remediation").map(str::to_string),
        })
    }

    /// The settings the run uses.
    pub fn settings(&self) -> Result<Settings> {
        serde_json::from_str(&self.settings)
            .map_err(|e| Error::internal(format!("a run's settings do not read: {e}")))
    }
}

pub(super) fn op_str(op: Operation) -> String {
    serde_json::to_value(op).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

pub(super) fn parse_op(s: &str) -> Option<Operation> {
    serde_json::from_value(Json::String(s.to_string())).ok()
}

pub(super) fn not_found(id: &str) -> Error {
    Error::NotFound(format!("deployment {id} not found"))
}

/// Reads a run, or 404.
pub async fn get(meta: &dyn MetadataStore, id: &str) -> Result<Run> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(not_found(id));
    }
    match meta.get(&run_pk(id), RUN_SK).await? {
        Some(item) => Run::from_item(id, &item),
        None => Err(not_found(id)),
    }
}

/// Reads a run of `stack`, or 404 (also for another stack's run).
pub async fn get_of(meta: &dyn MetadataStore, stack: &Stack, id: &str) -> Result<Run> {
    let run = get(meta, id).await?;
    if run.stack_id != stack.id.as_str() {
        return Err(not_found(id));
    }
    Ok(run)
}

/// `CreateDeploymentRequest`: the operation, and settings for this run.
#[derive(Debug, Clone)]
pub struct Request {
    pub operation: Operation,
    /// Start from the stack's settings (the default), the request's merged in.
    pub inherit: bool,
    /// The request's own settings (the body without `operation` and `inheritSettings`).
    pub overrides: Json,
}

impl Request {
    /// Reads a request body (400 when the operation is missing or unknown).
    pub fn parse(mut body: Json) -> Result<Request> {
        let Some(fields) = body.as_object_mut() else {
            return Err(Error::BadRequest("a deployment request is a JSON object".into()));
        };
        let operation = match fields.remove("operation") {
            Some(Json::String(op)) => parse_op(&op).ok_or_else(|| {
                Error::BadRequest(format!(
                    "unknown operation {op:?}: update, preview, refresh, destroy, detect-drift or remediate-drift"
                ))
            })?,
            _ => return Err(Error::BadRequest("operation is required".into())),
        };
        let inherit = match fields.remove("inheritSettings") {
            None | Some(Json::Null) => true,
            Some(Json::Bool(b)) => b,
            Some(_) => return Err(Error::BadRequest("inheritSettings is a boolean".into())),
        };
        Ok(Request { operation, inherit, overrides: body })
    }
}

/// Creates a run of `stack` asked for by `caller`, queued to start.
pub async fn create(app: &App, stack: &Stack, caller: &Principal, req: Request) -> Result<Run> {
    if caller.deployment.is_some() {
        return Err(Error::Forbidden("a deployment cannot start another deployment".into()));
    }
    let settings = run_settings(app, stack.id.as_str(), &req).await?;
    let requester = Requester::of(caller);
    let run = insert(app, stack, &requester, caller.login(), req.operation, &settings, |_| vec![])
        .await?
        .ok_or_else(|| Error::Conflict("the stack is busy; try again".into()))?;
    queue(app, &run).await?;
    super::notify::run_step(app, &run, super::notify::Step::Queued, None).await;
    Ok(run)
}

/// The settings a run of the request uses, sealed, as stored with it: the stack's with the
/// request's merged in (or the request's alone). 400 when they name no source.
pub(super) async fn run_settings(app: &App, stack_id: &str, req: &Request) -> Result<String> {
    let mut doc = match (req.inherit, settings::get(app, stack_id).await?) {
        (true, Some(stored)) => serde_json::to_value(&stored.settings)
            .map_err(|e| Error::internal(format!("settings do not serialise: {e}")))?,
        _ => Json::Object(Default::default()),
    };
    settings::merge(&mut doc, &req.overrides);
    let mut run_settings = settings::parse(&doc)?;
    let has_source = run_settings
        .source_context
        .as_ref()
        .and_then(|c| c.git.as_ref())
        .and_then(|g| g.repo_url.as_deref())
        .is_some_and(|u| !u.is_empty());
    if !has_source {
        return Err(Error::BadRequest(
            "the deployment has no source: set sourceContext.git.repoUrl in the stack's deployment settings or the request".into(),
        ));
    }
    settings::seal(app, stack_id, &mut run_settings).await?;
    serde_json::to_string(&run_settings)
        .map_err(|e| Error::internal(format!("settings do not serialise: {e}")))
}

/// Writes a new run (`not-started`) with its listings, and `extra` writes in the same
/// transaction (a schedule's window cursor), so the run exists exactly when they landed. None
/// when every try lost a race (on the stack's run counter, or on a condition of `extra`).
pub(super) async fn insert(
    app: &App,
    stack: &Stack,
    requester: &Requester,
    requested_by: &str,
    operation: Operation,
    settings_json: &str,
    extra: impl Fn(&Run) -> Vec<TransactOp>,
) -> Result<Option<Run>> {
    let meta = app.ports.meta.as_ref();
    let sid = stack.id.as_str();
    let now = app.clock.now();
    let id = new_id(now);
    retry_on_conflict!(8, async {
        let seq = meta.get(&item_keys::stack_id_pk(sid), SEQ_SK).await?;
        let last = seq.as_ref().and_then(|i| i.n("last")).unwrap_or(0);
        let run = Run {
            id: id.clone(),
            org: stack.org.clone(),
            project: stack.project.clone(),
            stack: stack.stack.clone(),
            stack_id: sid.to_string(),
            version: last + 1,
            operation,
            status: Status::NotStarted,
            created: now,
            modified: now,
            started: None,
            ended: None,
            requested_by: requested_by.to_string(),
            requester: requester.clone(),
            settings: settings_json.to_string(),
            cancel: false,
            message: None,
            token_hash: None,
            stack_version: stack.version,
            heartbeat: None,
            drift: None,
            remediation: None,
        };
        let seq_item =
            Item::new(item_keys::stack_id_pk(sid), SEQ_SK).with("last", Value::N(last + 1));
        let seq_cond = match seq {
            None => Condition::NotExists,
            Some(_) => Condition::Equals("last".into(), Value::N(last)),
        };
        let stack_listing =
            Item::new(item_keys::stack_id_pk(sid), format!("{LISTING_PREFIX}{:010}", last + 1))
                .with("id", Value::S(id.clone()));
        let org_listing =
            Item::new(item_keys::org_pk(&stack.org), format!("{LISTING_PREFIX}{now:012}#{id}"))
                .with("id", Value::S(id.clone()));
        let live = Item::new(LIVE_PK, id.clone()).with("created", Value::N(now));
        let mut ops = vec![
            TransactOp::Put(seq_item, Some(seq_cond)),
            TransactOp::Put(run.item(), Some(Condition::NotExists)),
            TransactOp::Put(live, None),
            TransactOp::Put(stack_listing, Some(Condition::NotExists)),
            TransactOp::Put(org_listing, Some(Condition::NotExists)),
        ];
        ops.extend(extra(&run));
        written(meta.transact(ops).await, run)
    })
}

/// The runs not ended yet (as the live index has them; one gone meanwhile is skipped).
pub(super) async fn live_runs(meta: &dyn MetadataStore) -> Result<Vec<Run>> {
    let mut out = Vec::new();
    for item in query_all(meta, Query::prefix(LIVE_PK, "", 500)).await? {
        match get(meta, &item.sk).await {
            Ok(run) => out.push(run),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Most runs of one stack not ended yet that a rename carries along (its transaction also
/// holds the stack's schedules, at most 50, within DynamoDB's 100 items).
pub const MAX_RENAMED_RUNS: usize = 40;

/// The writes that give the queued runs of stack `stack_id` their stack's new names, for the
/// rename's own transaction: a run's runner finds its stack by the names it is given when it
/// starts. Each is conditional on the run being as read (still queued, not cancelled), so a
/// run that moved on meanwhile fails the rename's try and its next try reads it again. A run
/// already started has its names: the rename is refused while one runs, as while an update
/// runs. Reads the live runs of every stack (the reaper's index: runs not ended, a few at a
/// time), which a rename, being rare, can afford.
pub(crate) async fn renamed_ops(
    meta: &dyn MetadataStore,
    stack_id: &str,
    project: &str,
    stack: &str,
) -> Result<Vec<TransactOp>> {
    let live: Vec<Run> = live_runs(meta)
        .await?
        .into_iter()
        .filter(|r| r.stack_id == stack_id && !r.status.ended())
        .collect();
    if let Some(running) = live.iter().find(|r| r.status != Status::NotStarted) {
        return Err(Error::Conflict(format!(
            "deployment {} of this stack is {}; the stack cannot be renamed now",
            running.id,
            running.status.as_str()
        )));
    }
    if live.len() > MAX_RENAMED_RUNS {
        return Err(Error::Conflict(format!(
            "{} deployment runs of this stack have not ended (at most {MAX_RENAMED_RUNS} move \
             with a rename); cancel some and try again",
            live.len()
        )));
    }
    Ok(live
        .into_iter()
        .map(|old| {
            let cond = Condition::Equals("status".into(), Value::S(old.status.as_str().into()))
                .and(Condition::Equals("modified".into(), Value::N(old.modified)));
            let new = Run { project: project.to_string(), stack: stack.to_string(), ..old };
            TransactOp::Put(new.item(), Some(cond))
        })
        .collect())
}

/// Sends a new run to `job-deployment-start`. Not sent (a crash before it): the run stays
/// `not-started` until the reaper sends it again.
pub(super) async fn queue(app: &App, run: &Run) -> Result<()> {
    app.ports.queue.send(DEPLOYMENTS_QUEUE, &message(&run.id), std::time::Duration::ZERO).await?;
    Ok(())
}

/// The stack of a run or schedule, by its names and id; None when it is gone (or the names
/// are another stack's now).
pub(super) async fn stack_of(
    meta: &dyn MetadataStore,
    org: &str,
    project: &str,
    stack: &str,
    id: &str,
) -> Result<Option<Stack>> {
    let (Ok(org), Ok(project), Ok(stack)) =
        (OrgName::parse(org), ProjectName::parse(project), StackName::parse(stack))
    else {
        return Ok(None);
    };
    match stacks::get(meta, &StackRef { org, project, stack }).await {
        Ok(found) if found.id.as_str() == id => Ok(Some(found)),
        Ok(_) | Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The record that an update was made by run `run` (written with the update), under the run.
pub fn made_by(
    run: &str,
    stack_id: &crate::names::StackId,
    update_id: &crate::names::UpdateId,
) -> Item {
    Item::new(run_pk(run), format!("{MADE_PREFIX}{update_id}"))
        .with("stack_id", Value::S(stack_id.to_string()))
}

/// The updates run `run` made (previews included), oldest first.
pub async fn made(
    meta: &dyn MetadataStore,
    run: &Run,
) -> Result<Vec<crate::service::updates::Update>> {
    use crate::names::{StackId, UpdateId};
    let mut out = Vec::new();
    for item in query_all(meta, Query::prefix(run_pk(&run.id), MADE_PREFIX, 100)).await? {
        let id = UpdateId::from_stored(item.sk.trim_start_matches(MADE_PREFIX));
        let stack = StackId::from_stored(item.s("stack_id").unwrap_or_default());
        match crate::service::updates::get(meta, &stack, &id).await {
            Ok(u) => out.push(u),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by_key(|u| u.created);
    Ok(out)
}

pub(super) fn message(id: &str) -> String {
    serde_json::json!({ "deployment": id }).to_string()
}

/// A new run id: time-ordered, then random (`<seconds hex>-<random hex>`).
fn new_id(now: i64) -> String {
    format!("{now:010x}-{:016x}", rand::random::<u64>())
}

/// The runs of a stack by version (newest first unless `asc`), one page (1-based), and how
/// many there are.
pub async fn list_stack(
    meta: &dyn MetadataStore,
    stack_id: &str,
    page: usize,
    size: usize,
    asc: bool,
) -> Result<(Vec<Run>, usize)> {
    let ids = listing(meta, &item_keys::stack_id_pk(stack_id)).await?;
    page_of(meta, ids, page, size, asc).await
}

/// The runs of an organization by creation (newest first unless `asc`), one page.
pub async fn list_org(
    meta: &dyn MetadataStore,
    org: &str,
    page: usize,
    size: usize,
    asc: bool,
) -> Result<(Vec<Run>, usize)> {
    let ids = listing(meta, &item_keys::org_pk(org)).await?;
    page_of(meta, ids, page, size, asc).await
}

async fn listing(meta: &dyn MetadataStore, pk: &str) -> Result<Vec<String>> {
    let items = query_all(meta, Query::prefix(pk.to_string(), LISTING_PREFIX, 1000)).await?;
    Ok(items.iter().filter_map(|i| i.s("id").map(str::to_string)).collect())
}

async fn page_of(
    meta: &dyn MetadataStore,
    mut ids: Vec<String>,
    page: usize,
    size: usize,
    asc: bool,
) -> Result<(Vec<Run>, usize)> {
    if !asc {
        ids.reverse();
    }
    let total = ids.len();
    let mut out = Vec::new();
    for id in ids.iter().skip(page.saturating_sub(1) * size).take(size) {
        out.push(get(meta, id).await?);
    }
    Ok((out, total))
}

/// Asks a run to stop: one not started yet never starts; a running one's runner interrupts
/// the CLI. An ended run is left as it is.
pub async fn cancel(app: &App, run: &Run) -> Result<()> {
    if run.status.ended() {
        return Ok(());
    }
    let mut u = Update::new(run_pk(&run.id), RUN_SK);
    u.set.insert("cancel".into(), Value::Bool(true));
    u.set.insert("modified".into(), Value::N(app.clock.now()));
    u.condition = Some(Condition::Exists);
    app.ports.meta.update(u).await?;
    Ok(())
}

/// The stack's history entries the run made, oldest first: the versions of the updates its
/// token made (the [`made_by`] records, written in each update's own transaction). Previews
/// make no version and are not among them; a version retention removed is skipped. Reads one
/// page of records and two items per update, however long the stack's history.
pub async fn updates(
    meta: &dyn MetadataStore,
    run: &Run,
) -> Result<Vec<crate::service::history::Entry>> {
    let mut out = Vec::new();
    for update in made(meta, run).await? {
        let Some(version) = update.version else { continue };
        match crate::service::history::get(meta, update.stack_id.as_str(), version).await {
            Ok(entry) => out.push(entry),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_name_an_operation_and_may_skip_the_stack_settings() {
        let r = Request::parse(json!({"operation": "detect-drift", "tag": "x"})).unwrap();
        assert_eq!((r.operation, r.inherit), (Operation::DetectDrift, true));
        assert_eq!(r.overrides, json!({"tag": "x"}), "the rest are the run's settings");
        let r = Request::parse(json!({"operation": "destroy", "inheritSettings": false})).unwrap();
        assert!(!r.inherit);
        for bad in [
            json!({}),
            json!({"operation": "deploy"}),
            json!({"operation": "update", "inheritSettings": "yes"}),
            json!([1]),
        ] {
            assert_eq!(Request::parse(bad).unwrap_err().status().as_u16(), 400);
        }
    }

    #[test]
    fn statuses_read_back_and_know_when_they_ended() {
        for s in [
            Status::NotStarted,
            Status::Accepted,
            Status::Running,
            Status::Failed,
            Status::Succeeded,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert!(Status::Failed.ended() && !Status::Running.ended());
    }
}
