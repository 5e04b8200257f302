//! Updates (up, preview, refresh, destroy): creation, the lease that makes one update the only
//! writer of its stack, checkpoints, completion, cancellation and recovery of abandoned updates
//! (docs/PROTOCOL-NOTES.md: Update lifecycle, Leases, Checkpoints; docs/ARCHITECTURE.md,
//! Consistency and crash safety).
//!
//! One item per update under the stack's immutable id. The stack item names its active update;
//! every change to the pair is one transaction conditioned on both revisions, so a start, a
//! renew, a complete and a cancel racing each other serialise cleanly.

use sha2::{Digest, Sha256};

use super::deployments::{self, Summary};
use super::journal::JournalEntry;
use super::optimistic::{retry_on_conflict, written, Attempt};
use super::{history, keys, new_id, stacks};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::StackRef;
use crate::ports::{Condition, Item, MetaError, MetadataStore, TransactOp, Value};

/// Lifecycle state of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, not started.
    NotStarted,
    /// Started; holds the stack's lease.
    Running,
    /// Completed successfully.
    Succeeded,
    /// Completed with a failure, abandoned (lease expired) or cancelled.
    Failed,
    /// Cancelled by `pulumi cancel`.
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "not-started",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> Status {
        match s {
            "not-started" => Status::NotStarted,
            "running" => Status::Running,
            "succeeded" => Status::Succeeded,
            "cancelled" => Status::Cancelled,
            _ => Status::Failed,
        }
    }
    /// Whether the update has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Cancelled)
    }
    /// `UpdateInfo.result` spelling (cancelled maps to failed, docs/PROTOCOL-NOTES.md, Update
    /// lifecycle).
    pub fn result(self) -> &'static str {
        match self {
            Status::NotStarted => "not-started",
            Status::Running => "in-progress",
            Status::Succeeded => "succeeded",
            Status::Failed | Status::Cancelled => "failed",
        }
    }
    /// `UpdateResults.status` spelling (`GET …/update/{id}`).
    pub fn results_status(self) -> &'static str {
        match self {
            Status::NotStarted => "not started",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed | Status::Cancelled => "failed",
        }
    }
}

/// The kinds an update can be created with through `POST …/{kind}`.
pub const PROGRAM_KINDS: &[&str] = &["update", "preview", "refresh", "destroy"];

/// An update as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Update id.
    pub id: String,
    /// Immutable id of the stack.
    pub stack_id: String,
    /// Stack names at creation: lease tokens are bound to them (renames wait for updates).
    pub org: String,
    /// Project name.
    pub project: String,
    /// Stack name.
    pub stack: String,
    /// `update`, `preview`, `refresh`, `destroy`, `import` or `rename`.
    pub kind: String,
    /// A preview: never persists state, never bumps the version.
    pub dry_run: bool,
    /// Lifecycle state.
    pub status: Status,
    /// Who created it.
    pub author: String,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Start time.
    pub started: Option<i64>,
    /// End time.
    pub ended: Option<i64>,
    /// SHA-256 of the lease token.
    pub lease_hash: Option<String>,
    /// When the lease lapses (Unix seconds).
    pub lease_expires: i64,
    /// `config` of the program request, as JSON.
    pub config: String,
    /// `metadata.message`.
    pub message: String,
    /// `metadata.environment`, as JSON.
    pub environment: String,
    /// Last `summaryEvent.resourceChanges`, as JSON.
    pub resource_changes: Option<String>,
    /// Stack version this update produced (set when it ends, non-previews only).
    pub version: Option<i64>,
    /// Sequence number of the last verbatim/delta checkpoint stored (0: none).
    pub checkpoint_seq: i64,
    /// Persisted as journal entries (`journalVersion: 1`) rather than checkpoints.
    pub journal: bool,
    /// Deployment blob the journal replays onto (the stack's at start), recorded when a
    /// journal-mode update starts so that `job-update-materialise` never mistakes a later
    /// version for the base: `Some("")` when the stack had no deployment, `None` on updates
    /// started before it was recorded (those are only ever replayed in full).
    pub base_key: Option<String>,
    /// Highest journal sequence ID covered by the newest materialised snapshot (0: none);
    /// only ever grows (see `service::materialise`).
    pub snapshot_seq: i64,
    /// Version of the CLI that started the update (from its User-Agent), for manifests.
    pub cli_version: String,
    /// What the journal intake has accepted so far (`service::journal_intake::Cursor`, as
    /// JSON); `None` for checkpoint-mode updates and updates started before it was kept.
    pub journal_cursor: Option<String>,
    /// Optimistic-concurrency revision of the item.
    pub rev: i64,
}

impl Update {
    fn from_item(item: &Item) -> Result<Update> {
        let corrupt =
            || Error::Internal(format!("update item {} {} is incomplete", item.pk, item.sk));
        let s = |name: &str| item.s(name).map(str::to_string).ok_or_else(corrupt);
        Ok(Update {
            id: s("id")?,
            stack_id: s("stack_id")?,
            org: s("org")?,
            project: s("project")?,
            stack: s("stack")?,
            kind: s("kind")?,
            dry_run: item.bool("dry_run").unwrap_or(false),
            status: Status::parse(item.s("status").unwrap_or("failed")),
            author: item.s("author").unwrap_or_default().to_string(),
            created: item.n("created").unwrap_or(0),
            started: item.n("started"),
            ended: item.n("ended"),
            lease_hash: item.s("lease_hash").map(str::to_string),
            lease_expires: item.n("lease_expires").unwrap_or(0),
            config: item.s("config").unwrap_or("{}").to_string(),
            message: item.s("message").unwrap_or_default().to_string(),
            environment: item.s("environment").unwrap_or("{}").to_string(),
            resource_changes: item.s("resource_changes").map(str::to_string),
            version: item.n("version"),
            checkpoint_seq: item.n("checkpoint_seq").unwrap_or(0),
            journal: item.bool("journal").unwrap_or(false),
            base_key: item.s("base_key").map(str::to_string),
            snapshot_seq: item.n("snapshot_seq").unwrap_or(0),
            cli_version: item.s("cli_version").unwrap_or_default().to_string(),
            journal_cursor: item.s("journal_cursor").map(str::to_string),
            rev: item.n("rev").unwrap_or(0),
        })
    }

    fn to_item(&self) -> Item {
        let mut item = Item::new(keys::stack_id_pk(&self.stack_id), keys::update_sk(&self.id))
            .with("id", Value::S(self.id.clone()))
            .with("stack_id", Value::S(self.stack_id.clone()))
            .with("org", Value::S(self.org.clone()))
            .with("project", Value::S(self.project.clone()))
            .with("stack", Value::S(self.stack.clone()))
            .with("kind", Value::S(self.kind.clone()))
            .with("dry_run", Value::Bool(self.dry_run))
            .with("status", Value::S(self.status.as_str().into()))
            .with("author", Value::S(self.author.clone()))
            .with("created", Value::N(self.created))
            .with("lease_expires", Value::N(self.lease_expires))
            .with("config", Value::S(self.config.clone()))
            .with("message", Value::S(self.message.clone()))
            .with("environment", Value::S(self.environment.clone()))
            .with("checkpoint_seq", Value::N(self.checkpoint_seq))
            .with("journal", Value::Bool(self.journal))
            .with("snapshot_seq", Value::N(self.snapshot_seq))
            .with("cli_version", Value::S(self.cli_version.clone()))
            .with("rev", Value::N(self.rev));
        for (name, v) in
            [("started", self.started), ("ended", self.ended), ("version", self.version)]
        {
            if let Some(v) = v {
                item.set(name, Value::N(v));
            }
        }
        if let Some(h) = &self.lease_hash {
            item.set("lease_hash", Value::S(h.clone()));
        }
        if let Some(rc) = &self.resource_changes {
            item.set("resource_changes", Value::S(rc.clone()));
        }
        if let Some(base) = &self.base_key {
            item.set("base_key", Value::S(base.clone()));
        }
        if let Some(cursor) = &self.journal_cursor {
            item.set("journal_cursor", Value::S(cursor.clone()));
        }
        item
    }

    /// A transactional write of this update, conditioned on the revision read.
    fn put_op(&self) -> TransactOp {
        let mut next = self.clone();
        next.rev = self.rev + 1;
        TransactOp::Put(next.to_item(), Some(Condition::Equals("rev".into(), Value::N(self.rev))))
    }

    /// Records a materialised snapshot covering the journal up to `seq`: conditioned on the
    /// revision read and, explicitly, on the recorded sequence being lower, so a snapshot never
    /// goes backwards whatever order the jobs that computed them finish in.
    pub(crate) fn snapshot_op(&self, seq: i64) -> TransactOp {
        let mut next = self.clone();
        next.snapshot_seq = seq;
        next.rev = self.rev + 1;
        let lower = Condition::AttrNotExists("snapshot_seq".into())
            .or(Condition::LessThan("snapshot_seq".into(), Value::N(seq)));
        let same = Condition::Equals("rev".into(), Value::N(self.rev));
        TransactOp::Put(next.to_item(), Some(same.and(lower)))
    }

    /// Whether the update holds a live lease at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == Status::Running && self.lease_expires > now
    }
}

/// Reads an update of a stack; 404 when absent.
pub async fn get(meta: &dyn MetadataStore, stack_id: &str, update_id: &str) -> Result<Update> {
    let item = meta
        .get(&keys::stack_id_pk(stack_id), &keys::update_sk(update_id))
        .await?
        .ok_or_else(|| Error::NotFound(format!("update '{update_id}' not found")))?;
    Update::from_item(&item)
}

/// What the program request carries that the server keeps (docs/PROTOCOL-NOTES.md, Update
/// lifecycle).
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// `options.dryRun`.
    pub dry_run: bool,
    /// `config`, as JSON.
    pub config: String,
    /// `metadata.message`.
    pub message: String,
    /// `metadata.environment`, as JSON.
    pub environment: String,
}

/// Creates an update of `kind` (`POST …/{kind}`); a preview when `kind` is `preview` or the
/// program asks for a dry run.
pub async fn create(
    app: &App,
    r: &StackRef,
    kind: &str,
    author: &str,
    program: Program,
) -> Result<Update> {
    let meta = app.ports.meta.as_ref();
    let stack = stacks::get(meta, r).await?;
    let update = Update {
        id: new_id(),
        stack_id: stack.id.clone(),
        org: stack.org,
        project: stack.project,
        stack: stack.stack,
        kind: kind.to_string(),
        dry_run: program.dry_run || kind == "preview",
        status: Status::NotStarted,
        author: author.to_string(),
        created: app.clock.now(),
        started: None,
        ended: None,
        lease_hash: None,
        lease_expires: 0,
        config: program.config,
        message: program.message,
        environment: program.environment,
        resource_changes: None,
        version: None,
        checkpoint_seq: 0,
        journal: false,
        base_key: None,
        snapshot_seq: 0,
        cli_version: String::new(),
        journal_cursor: None,
        rev: 1,
    };
    meta.put(update.to_item(), Some(Condition::NotExists)).await?;
    Ok(update)
}

/// What a successful start returns.
#[derive(Debug, Clone)]
pub struct Started {
    /// The version the stack will have after this update (unchanged for previews).
    pub version: i64,
    /// The lease token (`update-token`).
    pub token: String,
    /// When the lease lapses unless renewed.
    pub expires: i64,
    /// The update persists journal entries (answer `journalVersion: 1`).
    pub journal: bool,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Lease tokens name their stack and update so a lease call reads only the update item.
fn new_lease_token(update: &Update) -> String {
    format!("{}.{}.{}", update.stack_id, update.id, hex::encode(rand::random::<[u8; 24]>()))
}

/// The stack's running update, if its lease is still live at `now`.
pub async fn live_update(
    meta: &dyn MetadataStore,
    stack: &stacks::Stack,
    now: i64,
) -> Result<Option<Update>> {
    let Some(active) = &stack.active_update else { return Ok(None) };
    match get(meta, &stack.id, active).await {
        Ok(u) if u.is_live(now) => Ok(Some(u)),
        Ok(_) | Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Starts an update: takes the stack's lease (409 while another update holds a live one) and
/// replaces the stack's tags when given. An abandoned update whose lease lapsed is finalised
/// as failed first, keeping the last state it checkpointed.
pub async fn start(
    app: &App,
    r: &StackRef,
    update_id: &str,
    tags: Option<std::collections::BTreeMap<String, String>>,
    journal: bool,
    cli_version: &str,
) -> Result<Started> {
    if let Some(t) = &tags {
        crate::names::validate_tags(t)?;
    }
    let meta = app.ports.meta.as_ref();
    let started = retry_on_conflict!(8, async {
        let now = app.clock.now();
        let mut stack = stacks::get(meta, r).await?;
        let mut update = get(meta, &stack.id, update_id).await?;
        if update.status != Status::NotStarted {
            return Err(Error::Conflict(format!("update '{update_id}' has already been started")));
        }
        if let Some(active) = stack.active_update.clone() {
            let holder = get(meta, &stack.id, &active).await;
            match holder {
                Ok(h) if h.is_live(now) => {
                    return Err(Error::Conflict("Another update is currently in progress.".into()))
                }
                Ok(h) if h.status == Status::Running => {
                    finalize_expired(app, h).await?;
                    return Ok(Attempt::Raced);
                }
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let token = new_lease_token(&update);
        let expires = now + app.settings.lease_seconds;
        update.status = Status::Running;
        update.started = Some(now);
        update.lease_hash = Some(hash(&token));
        update.lease_expires = expires;
        update.journal = journal && !update.dry_run;
        if update.journal {
            update.base_key = Some(stack.deployment_key.clone().unwrap_or_default());
            // The intake checks base indexes against the base's length when it knows it.
            let base_len = match (&stack.deployment_key, stack.resource_count) {
                (None, _) => Some(0),
                (Some(_), n) => n,
            };
            let cursor = super::journal_intake::Cursor::start(base_len);
            update.journal_cursor =
                Some(serde_json::to_string(&cursor).map_err(|e| Error::Internal(e.to_string()))?);
        }
        update.cli_version = cli_version.to_string();
        let version = if update.dry_run { stack.version } else { stack.version + 1 };
        let update_op = update.put_op();
        stack.active_update = Some(update.id.clone());
        if let Some(t) = &tags {
            stack.tags = t.clone();
        }
        // The lease index item lets the reaper find this update if its CLI dies.
        let index_op = super::reaper::lease_index_op(&update, now, expires);
        let started = Started { version, token, expires, journal: update.journal };
        let attempt =
            written(meta.transact(vec![stack.put_op()?, update_op, index_op]).await, started)?;
        if let Attempt::Done(_) = attempt {
            update_event(app, &update, "started").await;
        }
        Ok(attempt)
    })?;
    started
        .ok_or_else(|| Error::Conflict("the stack is being changed concurrently, try again".into()))
}

/// Resolves an `update-token` for the update named in the path. The token must be the update's
/// lease and the path must name the update's stack. With `live`, the lease must still be held
/// (403 otherwise, which the CLI reads as "lease expired").
pub async fn authenticate_lease(
    app: &App,
    token: &str,
    path: &StackRef,
    update_id: &str,
    live: bool,
) -> Result<Update> {
    let refused =
        || Error::Forbidden("the update token is invalid, expired or was released".into());
    let mut parts = token.splitn(3, '.');
    let (Some(stack_id), Some(token_update), Some(_)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(refused());
    };
    if token_update != update_id {
        return Err(refused());
    }
    let update = match get(app.ports.meta.as_ref(), stack_id, update_id).await {
        Ok(u) => u,
        Err(Error::NotFound(_)) => return Err(refused()),
        Err(e) => return Err(e),
    };
    let matches = update
        .lease_hash
        .as_deref()
        .is_some_and(|h| constant_time_eq(h.as_bytes(), hash(token).as_bytes()));
    let bound = update.org == path.org.as_str()
        && update.project == path.project.as_str()
        && update.stack == path.stack.as_str();
    if !matches || !bound {
        return Err(refused());
    }
    if live && !update.is_live(app.clock.now()) {
        return Err(refused());
    }
    Ok(update)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Extends the lease to `now + duration` (capped by the configured lease length). The token
/// stays the same, so calls in flight with it keep working.
pub async fn renew(app: &App, update: Update, duration: i64) -> Result<i64> {
    let meta = app.ports.meta.as_ref();
    let mut update = update;
    let renewed = retry_on_conflict!(8, async {
        let now = app.clock.now();
        if !update.is_live(now) {
            return Err(Error::Forbidden("the update's lease has expired or was released".into()));
        }
        let expires = now + duration.clamp(1, app.settings.lease_seconds);
        let mut next = update.clone();
        next.lease_expires = expires.max(update.lease_expires);
        let attempt = written(meta.transact(vec![next.put_op()]).await, next.lease_expires)?;
        if let Attempt::Raced = attempt {
            update = get(meta, &update.stack_id, &update.id).await?;
        }
        Ok(attempt)
    })?;
    renewed.ok_or_else(update_contended)
}

/// Stores a full checkpoint (`PATCH …/checkpoint`): the `UntypedDeployment` bytes. Idempotent:
/// each save replaces the previous one.
pub async fn save_checkpoint(app: &App, update: &Update, untyped: &[u8]) -> Result<()> {
    if update.dry_run {
        return Err(Error::BadRequest("previews do not persist checkpoints".into()));
    }
    if update.journal {
        return Err(Error::BadRequest(
            "this update persists journal entries, not checkpoints".into(),
        ));
    }
    let body = deployments::gzip(untyped)?;
    app.ports.blobs.put(&deployments::checkpoint_key(&update.id), body).await?;
    Ok(())
}

/// A checkpoint of the verbatim/delta protocol (docs/PROTOCOL-NOTES.md, Checkpoints).
#[derive(Debug)]
pub enum Sequenced<'a> {
    /// `checkpointverbatim`: the exact `UntypedDeployment` bytes.
    Verbatim(&'a [u8]),
    /// `checkpointdelta`: edits against the previous bytes and the SHA-256 of the result.
    Delta { edits: &'a [super::delta::TextEdit], hash: &'a str },
}

/// Stores a sequenced checkpoint. `seq == last + 1` applies it; a verbatim with `seq == last`
/// overwrites (the CLI's fallback after a failed delta, or a retry); a delta with
/// `seq == last` is a retry and succeeds only if it leads to the stored bytes. Anything else,
/// a delta without a baseline, or a hash mismatch is a 4xx, after which the CLI resends the
/// same sequence number verbatim.
pub async fn save_sequenced(
    app: &App,
    update: &Update,
    seq: i64,
    checkpoint: Sequenced<'_>,
) -> Result<()> {
    if update.dry_run {
        return Err(Error::BadRequest("previews do not persist checkpoints".into()));
    }
    if update.journal {
        return Err(Error::BadRequest(
            "this update persists journal entries, not checkpoints".into(),
        ));
    }
    let meta = app.ports.meta.as_ref();
    let blobs = app.ports.blobs.as_ref();
    let key = deployments::checkpoint_key(&update.id);
    let last = update.checkpoint_seq;
    let bytes: Vec<u8> = match checkpoint {
        Sequenced::Verbatim(raw) => {
            if seq != last && seq != last + 1 {
                return Err(Error::BadRequest(format!(
                    "checkpoint sequence number {seq} does not follow {last}"
                )));
            }
            deployments::check_untyped(raw, 3..=4)?;
            raw.to_vec()
        }
        Sequenced::Delta { edits, hash } => {
            if last == 0 {
                return Err(Error::BadRequest("no verbatim checkpoint to apply a delta to".into()));
            }
            let base = match blobs.get(&key).await? {
                Some(gz) => deployments::gunzip(&gz)?,
                None => return Err(Error::BadRequest("no checkpoint to apply a delta to".into())),
            };
            if seq == last {
                // A retry of the delta that produced the stored bytes.
                return if super::delta::check_hash(&base, hash) {
                    Ok(())
                } else {
                    Err(Error::BadRequest(
                        "the checkpoint delta does not match the stored checkpoint".into(),
                    ))
                };
            }
            if seq != last + 1 {
                return Err(Error::BadRequest(format!(
                    "checkpoint sequence number {seq} does not follow {last}"
                )));
            }
            let next = super::delta::apply_delta(&base, edits)
                .map_err(|e| Error::BadRequest(format!("invalid checkpoint delta: {e}")))?;
            if !super::delta::check_hash(&next, hash) {
                return Err(Error::BadRequest(
                    "checkpoint hash mismatch after applying the delta".into(),
                ));
            }
            deployments::check_untyped(&next, 3..=4)?;
            next
        }
    };
    // Blob first, then the sequence number: a crash in between leaves a retry that applies the
    // same bytes again, never a sequence number without its bytes.
    blobs.put(&key, deployments::gzip(&bytes)?).await?;
    if seq == last {
        return Ok(());
    }
    let mut next = update.clone();
    next.checkpoint_seq = seq;
    match meta.transact(vec![next.put_op()]).await {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => {
            let now = get(meta, &update.stack_id, &update.id).await?;
            if now.checkpoint_seq == seq {
                Ok(())
            } else {
                Err(Error::Conflict("the update changed concurrently; retry the checkpoint".into()))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Records the last summary event's resource changes on the update.
pub async fn record_resource_changes(
    app: &App,
    update: &Update,
    changes: &serde_json::Value,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let json = changes.to_string();
    let mut update = update.clone();
    let recorded = retry_on_conflict!(8, async {
        if update.resource_changes.as_deref() == Some(json.as_str()) {
            return Ok(Attempt::Done(()));
        }
        let mut next = update.clone();
        next.resource_changes = Some(json.clone());
        let attempt = written(meta.transact(vec![next.put_op()]).await, ())?;
        if let Attempt::Raced = attempt {
            update = get(meta, &update.stack_id, &update.id).await?;
        }
        Ok(attempt)
    })?;
    recorded.ok_or_else(update_contended)
}

/// Ends an update (complete, cancel or lease expiry): releases the lease and, unless it is a
/// preview, publishes the state it last checkpointed as the stack's next version with a
/// history entry. Idempotent: an update that has already ended is left as it is.
pub async fn finalize(app: &App, update: Update, status: Status) -> Result<Update> {
    Ok(end(app, update, status, false).await?.0)
}

/// Ends a running update as failed if, and only if, its lease has lapsed: the check is
/// repeated on every retry, so a renewal that lands between the caller's read and the write
/// (whose revision condition then fails) keeps the update running. Returns the ended update
/// when this call ended it; None when it is still running (renewed meanwhile) or something else
/// ended it first.
pub async fn finalize_expired(app: &App, update: Update) -> Result<Option<Update>> {
    let (update, ended_here) = end(app, update, Status::Failed, true).await?;
    Ok(ended_here.then_some(update))
}

/// The update as it now is, and whether this call ended it.
async fn end(
    app: &App,
    update: Update,
    status: Status,
    expired_only: bool,
) -> Result<(Update, bool)> {
    let meta = app.ports.meta.as_ref();
    let mut update = update;
    let ended = retry_on_conflict!(8, async {
        if update.status.is_final() {
            return Ok(Attempt::Done((update.clone(), false)));
        }
        let now = app.clock.now();
        if expired_only && (update.status != Status::Running || update.is_live(now)) {
            return Ok(Attempt::Done((update.clone(), false)));
        }
        let stack = meta
            .get(&keys::org_pk(&update.org), &keys::stack_sk(&update.project, &update.stack))
            .await?
            .map(|i| stacks::Stack::from_item(&i))
            .transpose()?
            .filter(|s| s.id == update.stack_id);
        let mut ended = update.clone();
        ended.status = status;
        ended.ended = Some(now);
        let mut ops = Vec::new();
        match stack {
            // The stack was force-deleted meanwhile: just end the update.
            None => {}
            Some(mut stack) => {
                if !update.dry_run && update.status == Status::Running {
                    let version = stack.version + 1;
                    let (key, summary, degraded) =
                        match publish_checkpoint(app, &update, &stack, version).await {
                            Ok(published) => published,
                            // What was stored cannot be read or replayed (a bug, or data
                            // from an older version): a cancel or a lapsed lease still ends
                            // the update, keeping the stack's current state, so the stack
                            // is never held forever. An outage (Unavailable) is retried
                            // instead: acknowledged writes are never given up for it.
                            Err(e @ (Error::Internal(_) | Error::BadRequest(_)))
                                if status != Status::Succeeded =>
                            {
                                tracing::error!(
                                    update = %update.id,
                                    stack = %update.stack_id,
                                    error = %e,
                                    "the update's stored state cannot be published; ending it \
                                     with the stack's current state"
                                );
                                let count = stack.resource_count.unwrap_or(0);
                                (
                                    stack.deployment_key.clone(),
                                    Summary { resource_count: count },
                                    true,
                                )
                            }
                            Err(e) => return Err(e),
                        };
                    if degraded {
                        // Part of the journal could not be replayed: never report success.
                        ended.status = Status::Failed;
                    }
                    ended.version = Some(version);
                    stack.version = version;
                    stack.deployment_key = key.clone();
                    stack.resource_count = Some(summary.resource_count);
                    stack.last_update = Some(now);
                    ops.push(history::entry_op(&ended, version, key.as_deref(), &summary)?);
                }
                if stack.active_update.as_deref() == Some(update.id.as_str()) {
                    stack.active_update = None;
                }
                ops.push(stack.put_op()?);
            }
        }
        if update.status == Status::Running {
            // Same transaction: the lease index never names an ended update.
            ops.extend(super::reaper::release_ops(&update, now));
        }
        ops.push(update.put_op_as(&ended));
        if let Attempt::Raced = written(meta.transact(ops).await, ())? {
            update = get(meta, &update.stack_id, &update.id).await?;
            return Ok(Attempt::Raced);
        }
        ended.rev = update.rev + 1;
        // Webhooks hear of updates that started (a cancelled, never started one had no
        // `started` event either).
        if update.status == Status::Running {
            let ok = ended.status == Status::Succeeded;
            update_event(app, &ended, if ok { "succeeded" } else { "failed" }).await;
            // One audit entry for all of the update's lease calls.
            super::audit::update_ended(app, &ended).await;
        }
        Ok(Attempt::Done((ended, true)))
    })?;
    ended
        .ok_or_else(|| Error::Conflict("the stack is being changed concurrently, try again".into()))
}

/// Queues the webhook deliveries of an update event (`import` and `rename` have none).
async fn update_event(app: &App, update: &Update, result: &str) {
    use super::webhook_deliveries::{emit, update_event_kind, DomainEvent, UpdateInfo};
    let Some(kind) = update_event_kind(&update.kind, update.dry_run, result) else { return };
    let operation = if update.dry_run { "preview" } else { update.kind.as_str() };
    let event = DomainEvent {
        org: update.org.clone(),
        project: update.project.clone(),
        stack: update.stack.clone(),
        stack_id: update.stack_id.clone(),
        kind,
        user: update.author.clone(),
        update: Some(UpdateInfo {
            id: update.id.clone(),
            operation: operation.to_string(),
            result: result.to_string(),
            version: update.version,
            resource_changes: update
                .resource_changes
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
        }),
    };
    emit(app, &event).await;
}

impl Update {
    /// Writes `next` in place of this update, conditioned on this update's revision.
    fn put_op_as(&self, next: &Update) -> TransactOp {
        let mut next = next.clone();
        next.rev = self.rev;
        next.put_op()
    }

    /// A succeeded update of `kind` that changed the stack without running the engine (a
    /// `rename`): started and ended at `now`, producing `version`.
    pub(crate) fn instant(
        stack: &stacks::Stack,
        kind: &str,
        author: &str,
        now: i64,
        version: i64,
    ) -> Update {
        Update {
            id: new_id(),
            stack_id: stack.id.clone(),
            org: stack.org.clone(),
            project: stack.project.clone(),
            stack: stack.stack.clone(),
            kind: kind.to_string(),
            dry_run: false,
            status: Status::Succeeded,
            author: author.to_string(),
            created: now,
            started: Some(now),
            ended: Some(now),
            lease_hash: None,
            lease_expires: 0,
            config: "{}".into(),
            message: String::new(),
            environment: "{}".into(),
            resource_changes: None,
            version: Some(version),
            checkpoint_seq: 0,
            journal: false,
            base_key: None,
            snapshot_seq: 0,
            cli_version: String::new(),
            journal_cursor: None,
            rev: 1,
        }
    }

    /// The transactional write of a new update item (fails if the id exists).
    pub(crate) fn create_op(&self) -> TransactOp {
        TransactOp::Put(self.to_item(), Some(Condition::NotExists))
    }
}

/// Copies the update's last checkpoint to the immutable key of `version` and summarises it. An
/// update that checkpointed nothing keeps the stack's current deployment.
async fn publish_checkpoint(
    app: &App,
    update: &Update,
    stack: &stacks::Stack,
    version: i64,
) -> Result<(Option<String>, Summary, bool)> {
    let blobs = app.ports.blobs.as_ref();
    if update.journal {
        return publish_journal(app, update, stack, version).await;
    }
    match blobs.get(&deployments::checkpoint_key(&update.id)).await? {
        Some(gz) => {
            let summary = deployments::check_untyped(&deployments::gunzip(&gz)?, 1..=4)?;
            let key = deployments::version_key(&update.stack_id, version);
            blobs.put(&key, gz).await?;
            Ok((Some(key), summary, false))
        }
        None => Ok((
            stack.deployment_key.clone(),
            Summary { resource_count: stack.resource_count.unwrap_or(0) },
            false,
        )),
    }
}

/// Where an update's journal batches live (scratch: retention removes them with the update).
pub(crate) fn journal_prefix(update_id: &str) -> String {
    format!("updates/{update_id}/journal/")
}

/// Stores one batch of journal entries (`PATCH …/journalentries`) after the intake accepted it
/// (`service::journal_intake`): the batch object is named by its sequence range, then the
/// update's cursor is advanced with a conditional write, and only then is the batch
/// acknowledged. A retry of entries already accepted is acknowledged without a write when it
/// equals what is stored, and refused (409) when it does not: an acknowledged entry is never
/// replaced.
pub async fn save_journal(app: &App, update: &Update, entries: &[JournalEntry]) -> Result<()> {
    use super::journal_intake::{Cursor, Intake};
    if !update.journal {
        return Err(Error::BadRequest(
            "this update persists checkpoints, not journal entries".into(),
        ));
    }
    if entries.is_empty() {
        return Ok(());
    }
    let meta = app.ports.meta.as_ref();
    let mut update = update.clone();
    let stored = retry_on_conflict!(8, async {
        // Updates started before the intake kept this cursor: shape checks only (and replay
        // judges the indexes at `complete`).
        let cursor: Option<Cursor> = update.journal_cursor.as_deref().and_then(|text| {
            serde_json::from_str(text)
                .inspect_err(
                    |e| tracing::warn!(update = %update.id, "journal cursor unreadable: {e}"),
                )
                .ok()
        });
        let Some(cursor) = cursor else {
            for e in entries {
                super::journal_intake::check_shape(e)?;
            }
            return store_batch(app, &update, entries).await.map(Attempt::Done);
        };
        let next = match cursor.check(entries)? {
            Intake::Retry => return same_as_stored(app, &update, entries).await.map(Attempt::Done),
            Intake::Accept(next) => next,
        };
        store_batch(app, &update, entries).await?;
        let mut advanced = update.clone();
        advanced.journal_cursor =
            Some(serde_json::to_string(&next).map_err(|e| Error::Internal(e.to_string()))?);
        let attempt = written(meta.transact(vec![advanced.put_op()]).await, ())?;
        if let Attempt::Raced = attempt {
            // A renewal or a snapshot changed the item meanwhile: check against it again.
            update = get(meta, &update.stack_id, &update.id).await?;
            if update.status.is_final() {
                return Err(Error::Conflict("the update has ended".into()));
            }
        }
        Ok(attempt)
    })?;
    stored.ok_or_else(update_contended)
}

/// The batch object's key: its lowest and highest sequence IDs.
fn batch_key(update_id: &str, entries: &[JournalEntry]) -> Option<String> {
    let first = entries.iter().map(|e| e.sequence_id).min()?;
    let last = entries.iter().map(|e| e.sequence_id).max()?;
    Some(format!("{}{first:012}-{last:012}.json.gz", journal_prefix(update_id)))
}

async fn store_batch(app: &App, update: &Update, entries: &[JournalEntry]) -> Result<()> {
    let Some(key) = batch_key(&update.id, entries) else { return Ok(()) };
    let first = entries.iter().map(|e| e.sequence_id).min().unwrap_or(0);
    let last = entries.iter().map(|e| e.sequence_id).max().unwrap_or(0);
    let body = serde_json::to_vec(entries).map_err(|e| Error::Internal(e.to_string()))?;
    app.ports.blobs.put(&key, deployments::gzip(&body)?).await?;
    super::materialise::after_batch(app, update, first, last).await;
    Ok(())
}

/// Every stored journal batch of an update.
async fn journal_keys(app: &App, update_id: &str) -> Result<Vec<String>> {
    let (mut keys, mut after) = (Vec::new(), None);
    loop {
        let page = app.ports.blobs.list(&journal_prefix(update_id), after).await?;
        keys.extend(page.keys);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(keys),
        }
    }
}

/// Acknowledges a retried batch whose every entry equals the one stored under its sequence
/// ID; 409 otherwise.
async fn same_as_stored(app: &App, update: &Update, entries: &[JournalEntry]) -> Result<()> {
    let blobs = app.ports.blobs.as_ref();
    let differs = || {
        Error::Conflict(
            "journal entries with these sequence IDs were already recorded with other contents"
                .into(),
        )
    };
    // The common case: the same batch again, stored under the same key.
    let mut stored: std::collections::HashMap<i64, JournalEntry> = Default::default();
    let keys = match batch_key(&update.id, entries) {
        Some(key) if blobs.get(&key).await?.is_some() => vec![key],
        _ => journal_keys(app, &update.id).await?,
    };
    for key in keys {
        let Some(gz) = blobs.get(&key).await? else { continue };
        let batch: Vec<JournalEntry> = serde_json::from_slice(&deployments::gunzip(&gz)?)
            .map_err(|e| Error::Internal(format!("journal batch {key} is corrupt: {e}")))?;
        stored.extend(batch.into_iter().map(|e| (e.sequence_id, e)));
    }
    match entries.iter().all(|e| stored.get(&e.sequence_id) == Some(e)) {
        true => Ok(()),
        false => Err(differs()),
    }
}

/// Replays the update's journal onto the stack's deployment (from the newest materialised
/// snapshot when there is one) and publishes the result.
async fn publish_journal(
    app: &App,
    update: &Update,
    stack: &stacks::Stack,
    version: i64,
) -> Result<(Option<String>, Summary, bool)> {
    let blobs = app.ports.blobs.as_ref();
    let unchanged = || {
        (
            stack.deployment_key.clone(),
            Summary { resource_count: stack.resource_count.unwrap_or(0) },
        )
    };
    // The stack's deployment is still the one the update started from: nothing else may
    // change it while the update holds (or held, until this ends it) the stack's lease.
    // A journal the replayer rejects must not leave the stack unusable (every later update
    // would fail finalising this one), so replay is best effort: each entry is applied on its
    // own, a rejected one is logged and skipped, and the update is then recorded as failed.
    // The stored batches stay in the blob store for inspection.
    let super::materialise::Replay { replayer, mut degraded } =
        super::materialise::replay(app, update, stack.deployment_key.as_deref()).await?;
    if replayer.buffered() > 0 {
        tracing::error!(update = %update.id, held = replayer.buffered(), "journal has gaps; entries after the first gap were not applied");
        degraded = true;
    }
    if replayer.last_sequence() == 0 {
        // Nothing journaled (or nothing usable): the state is unchanged.
        let (key, summary) = unchanged();
        return Ok((key, summary, degraded));
    }
    let manifest = manifest(&update.cli_version, app.clock.now());
    let (schema, features, deployment) = match replayer.snapshot(manifest) {
        Ok(generated) => generated,
        Err(e) => {
            tracing::error!(update = %update.id, error = %e, "journal snapshot failed; state left unchanged");
            let (key, summary) = unchanged();
            return Ok((key, summary, true));
        }
    };
    let raw =
        serde_json::value::to_raw_value(&deployment).map_err(|e| Error::Internal(e.to_string()))?;
    let bytes = deployments::untyped(schema, Some(&features), &raw)?;
    let summary = deployments::check_untyped(&bytes, 3..=4)?;
    let key = deployments::version_key(&update.stack_id, version);
    blobs.put(&key, deployments::gzip(&bytes)?).await?;
    Ok((Some(key), summary, degraded))
}

/// A fresh deployment manifest, as the CLI writes one: time, CLI version and its SHA-256 magic.
fn manifest(cli_version: &str, now: i64) -> serde_json::Value {
    let time = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64),
    );
    serde_json::json!({
        "time": time.to_string(),
        "magic": hex::encode(Sha256::digest(cli_version.as_bytes())),
        "version": cli_version,
    })
}

/// `pulumi cancel`: ends the update as cancelled; its lease stops working at once.
pub async fn cancel(app: &App, r: &StackRef, update_id: &str) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let stack = stacks::get(meta, r).await?;
    let update = get(meta, &stack.id, update_id).await?;
    match update.status {
        Status::NotStarted | Status::Running => {
            finalize(app, update, Status::Cancelled).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `pulumi stack import` (and stack creation with an initial state): stores the deployment as
/// the stack's next version with an `import` history entry, under the stack's lease like any
/// update (409 while another update runs). Returns the ended update.
pub async fn import(app: &App, r: &StackRef, author: &str, untyped: &[u8]) -> Result<Update> {
    deployments::check_untyped(untyped, 1..=4)?;
    let program = Program {
        dry_run: false,
        config: "{}".into(),
        message: String::new(),
        environment: "{}".into(),
    };
    let update = create(app, r, "import", author, program).await?;
    start(app, r, &update.id, None, false, "").await?;
    let update = get(app.ports.meta.as_ref(), &update.stack_id, &update.id).await?;
    save_checkpoint(app, &update, untyped).await?;
    finalize(app, update, Status::Succeeded).await
}

fn update_contended() -> Error {
    Error::Conflict("the update is being changed concurrently, try again".into())
}
