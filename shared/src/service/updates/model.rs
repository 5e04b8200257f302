//! The update item: its status, fields, storage layout and the writes that change it.

use crate::error::{Error, Result};
use crate::names::{StackId, UpdateId};
use crate::ports::{Condition, Item, MetadataStore, TransactOp, Update as MetaUpdate, Value};
use crate::service::{item_keys, stacks};

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
    pub(super) fn as_str(self) -> &'static str {
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
    pub id: UpdateId,
    /// Immutable id of the stack.
    pub stack_id: StackId,
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
    /// Where the verbatim/delta checkpoints are stored (`None`: none yet, or stored whole
    /// under the update's one checkpoint key as before chains).
    pub checkpoint_chain: Option<super::chain::Chain>,
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
            || Error::internal(format!("update item {} {} is incomplete", item.pk, item.sk));
        let s = |name: &str| item.s(name).map(str::to_string).ok_or_else(corrupt);
        Ok(Update {
            id: UpdateId::from_stored(s("id")?),
            stack_id: StackId::from_stored(s("stack_id")?),
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
            checkpoint_chain: match (item.s("cp_base_hash"), item.s("cp_hash")) {
                (Some(base_hash), Some(hash)) => Some(super::chain::Chain {
                    base: item.n("cp_base").unwrap_or(0),
                    base_hash: base_hash.to_string(),
                    base_bytes: item.n("cp_base_bytes").unwrap_or(0),
                    delta_bytes: item.n("cp_delta_bytes").unwrap_or(0),
                    hash: hash.to_string(),
                }),
                _ => None,
            },
            journal: item.bool("journal").unwrap_or(false),
            base_key: item.s("base_key").map(str::to_string),
            snapshot_seq: item.n("snapshot_seq").unwrap_or(0),
            cli_version: item.s("cli_version").unwrap_or_default().to_string(),
            journal_cursor: item.s("journal_cursor").map(str::to_string),
            rev: item.n("rev").unwrap_or(0),
        })
    }

    pub(super) fn to_item(&self) -> Item {
        let mut item =
            Item::new(item_keys::stack_id_pk(&self.stack_id), item_keys::update_sk(&self.id))
                .with("id", Value::S(self.id.to_string()))
                .with("stack_id", Value::S(self.stack_id.to_string()))
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
        if let Some(chain) = &self.checkpoint_chain {
            item.set("cp_base", Value::N(chain.base));
            item.set("cp_base_hash", Value::S(chain.base_hash.clone()));
            item.set("cp_base_bytes", Value::N(chain.base_bytes));
            item.set("cp_delta_bytes", Value::N(chain.delta_bytes));
            item.set("cp_hash", Value::S(chain.hash.clone()));
        }
        item
    }

    /// A transactional write of this update, conditioned on the revision read.
    pub(super) fn put_op(&self) -> TransactOp {
        let mut next = self.clone();
        next.rev = self.rev + 1;
        TransactOp::Put(next.to_item(), Some(Condition::Equals("rev".into(), Value::N(self.rev))))
    }

    /// Records a materialised snapshot covering the journal up to `seq`, whatever else changed
    /// on the item since it was read: one conditional update that sets only the recorded
    /// sequence and bumps the revision (so a writer holding the item as it was reads it again
    /// rather than putting the older sequence back). It applies only while the update runs and
    /// to a lower recorded sequence, so a snapshot never goes backwards whatever order the jobs
    /// that computed them finish in. (A put conditioned on the revision lost to every journal
    /// batch stored meanwhile, and the job's snapshots fell behind the journal.)
    pub(crate) fn snapshot_update(&self, seq: i64) -> MetaUpdate {
        let newer = Condition::AttrNotExists("snapshot_seq".into())
            .or(Condition::LessThan("snapshot_seq".into(), Value::N(seq)));
        let running = Condition::Equals("status".into(), Value::S(Status::Running.as_str().into()));
        MetaUpdate::new(item_keys::stack_id_pk(&self.stack_id), item_keys::update_sk(&self.id))
            .set("snapshot_seq", Value::N(seq))
            .add("rev", 1)
            .when(running.and(newer))
    }

    /// Whether it ran a program and so has an end worth summarising (audit log, event
    /// stream): it started, and it is not a single-call import or rename.
    pub fn ran_a_program(&self) -> bool {
        self.started.is_some() && !matches!(self.kind.as_str(), "import" | "rename")
    }

    /// What it stored, for the per-update metrics, once it ended; `published_bytes` is the
    /// size of the deployment its end published.
    pub fn metrics(&self, published_bytes: u64) -> crate::telemetry::metrics::UpdateEnd {
        let journal_entries = self
            .journal_cursor
            .as_deref()
            .and_then(|text| {
                serde_json::from_str::<crate::service::journal_intake::Cursor>(text).ok()
            })
            .map_or(0, |cursor| cursor.seqs.count().max(0) as u64);
        let operation = if self.dry_run { "preview" } else { self.kind.as_str() };
        crate::telemetry::metrics::UpdateEnd {
            operation: operation.to_string(),
            result: self.status.result(),
            journal_entries,
            checkpoint_saves: self.checkpoint_seq.max(0) as u64,
            deployment_bytes: published_bytes,
        }
    }

    /// Whether the update holds a live lease at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == Status::Running && self.lease_expires > now
    }
}

/// Reads an update of a stack; 404 when absent.
pub async fn get(
    meta: &dyn MetadataStore,
    stack_id: &StackId,
    update_id: &UpdateId,
) -> Result<Update> {
    let item = meta
        .get(&item_keys::stack_id_pk(stack_id), &item_keys::update_sk(update_id))
        .await?
        .ok_or_else(|| Error::NotFound(format!("update '{update_id}' not found")))?;
    Update::from_item(&item)
}

/// Every update of a stack that `keep` keeps, oldest first. Reads all of the stack's update
/// items: callers are the per-request views of one stack's activity.
pub async fn of_stack(
    meta: &dyn MetadataStore,
    stack_id: &StackId,
    keep: impl Fn(&Update) -> bool,
) -> Result<Vec<Update>> {
    let mut query = crate::ports::Query::prefix(
        item_keys::stack_id_pk(stack_id),
        item_keys::update_sk(""),
        100,
    );
    let mut out = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        for item in &page.items {
            let update = Update::from_item(item)?;
            if keep(&update) {
                out.push(update);
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    out.sort_by(|a, b| (a.created, a.id.as_str()).cmp(&(b.created, b.id.as_str())));
    Ok(out)
}

impl Update {
    /// Writes `next` in place of this update, conditioned on this update's revision.
    pub(super) fn put_op_as(&self, next: &Update) -> TransactOp {
        let mut next = next.clone();
        next.rev = self.rev;
        next.put_op()
    }

    /// A new update of `kind` on `stack` by `author`, created at `now` and not started, with
    /// an empty program: the one place every field of a fresh update is set.
    pub(super) fn fresh(stack: &stacks::Stack, kind: &str, author: &str, now: i64) -> Update {
        Update {
            id: UpdateId::generate(),
            stack_id: stack.id.clone(),
            org: stack.org.clone(),
            project: stack.project.clone(),
            stack: stack.stack.clone(),
            kind: kind.to_string(),
            dry_run: false,
            status: Status::NotStarted,
            author: author.to_string(),
            created: now,
            started: None,
            ended: None,
            lease_hash: None,
            lease_expires: 0,
            config: "{}".into(),
            message: String::new(),
            environment: "{}".into(),
            resource_changes: None,
            version: None,
            checkpoint_seq: 0,
            checkpoint_chain: None,
            journal: false,
            base_key: None,
            snapshot_seq: 0,
            cli_version: String::new(),
            journal_cursor: None,
            rev: 1,
        }
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
            status: Status::Succeeded,
            started: Some(now),
            ended: Some(now),
            version: Some(version),
            ..Update::fresh(stack, kind, author, now)
        }
    }

    /// The transactional write of a new update item (fails if the id exists).
    pub(crate) fn create_op(&self) -> TransactOp {
        TransactOp::Put(self.to_item(), Some(Condition::NotExists))
    }
}

/// The answer when the retries of an optimistic write all raced.
pub(super) fn update_contended() -> Error {
    Error::Conflict("the update is being changed concurrently, try again".into())
}
