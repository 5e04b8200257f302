//! An update's life: create, start (taking the stack's lease), end (complete, cancel, expiry),
//! cancel and import.

use crate::app::App;
use crate::error::{Error, Result};
use crate::names::StackRef;
use crate::names::UpdateId;
use crate::ports::{Condition, TransactOp};
use crate::service::deployments::{self};
use crate::service::optimistic::{retry_on_conflict, written, Attempt};
use crate::service::{audit, call_records, feed, history, item_keys, stacks};

use super::checkpoint::save_checkpoint;
use super::lease::{hash, new_lease_token};
use super::model::{get, Status, Update};
use super::publish::{publish_checkpoint, Published};

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
///
/// `stack`: as read for this call (by authorization); the update names only its immutable id.
/// `deployment`: the deployment run whose token made the call; the update is recorded with the
/// run in the same write (`service::deploy::runs::made_by`), so the run's results (drift) find
/// its updates, previews included.
pub async fn create(
    app: &App,
    stack: &stacks::Stack,
    kind: &str,
    author: &str,
    program: Program,
    deployment: Option<&str>,
) -> Result<Update> {
    let meta = app.ports.meta.as_ref();
    let update = Update {
        dry_run: program.dry_run || kind == "preview",
        config: program.config,
        message: program.message,
        environment: program.environment,
        ..Update::fresh(stack, kind, author, app.clock.now())
    };
    let mut budget = call_records::Budget::default();
    let created = retry_on_conflict!(8, async {
        let mut ops = vec![TransactOp::Put(update.to_item(), Some(Condition::NotExists))];
        if let Some(run) = deployment {
            ops.push(TransactOp::Put(
                crate::service::deploy::runs::made_by(run, &update.stack_id, &update.id),
                None,
            ));
        }
        let attached = call_records::stage_call(app, &mut ops, &mut budget).await?;
        // The update alone is a plain put: on DynamoDB half the write units of a transaction.
        let result = match <[TransactOp; 1]>::try_from(ops) {
            Ok([TransactOp::Put(item, condition)]) => meta.put(item, condition).await,
            Ok([op]) => meta.transact(vec![op]).await,
            Err(ops) => meta.transact(ops).await,
        };
        let attempt = written(result, ())?;
        if let (Attempt::Done(()), Some(attached)) = (&attempt, attached) {
            attached.committed(app);
        }
        // Lost only to an event written meanwhile (the id is fresh): stage the records again.
        Ok(attempt)
    })?;
    created.ok_or_else(|| {
        Error::Conflict("the organization is being changed concurrently, try again".into())
    })?;
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

/// Starts an update: takes the stack's lease (409 while another update holds a live one) and
/// replaces the stack's tags when given. An abandoned update whose lease lapsed is finalised
/// as failed first, keeping the last state it checkpointed. `read`: the stack as this call
/// already read it, used by the first try (the write is conditioned on its revision, so a
/// stale copy only costs a retry).
pub async fn start(
    app: &App,
    r: &StackRef,
    read: Option<stacks::Stack>,
    update_id: &UpdateId,
    tags: Option<std::collections::BTreeMap<String, String>>,
    journal: bool,
    cli_version: &str,
) -> Result<Started> {
    if let Some(t) = &tags {
        crate::names::validate_tags(t)?;
    }
    let meta = app.ports.meta.as_ref();
    let mut budget = call_records::Budget::default();
    let mut read = read;
    let started = retry_on_conflict!(8, async {
        let now = app.clock.now();
        let mut stack = match read.take() {
            Some(stack) => stack,
            None => stacks::get(meta, r).await?,
        };
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
            let cursor = crate::service::journal_intake::Cursor::start(base_len);
            update.journal_cursor = Some(
                serde_json::to_string(&cursor).map_err(|e| Error::caused("JSON encoding", e))?,
            );
        }
        update.cli_version = cli_version.to_string();
        let version = if update.dry_run { stack.version } else { stack.version + 1 };
        let update_op = update.put_op();
        stack.active_update = Some(update.id.clone());
        if let Some(t) = &tags {
            stack.tags = t.clone();
        }
        // The lease index item lets the reaper find this update if its CLI dies.
        let index_op = crate::service::reaper::lease_index_op(&update, now, expires);
        // And the organization's running updates show it (presence).
        let running_op = crate::service::feed::presence::running_op(&update, &stack, now);
        let started = Started { version, token, expires, journal: update.journal };
        let mut ops = vec![stack.put_op()?, update_op, index_op, running_op];
        let attached = call_records::stage_call(app, &mut ops, &mut budget).await?;
        let attempt = written(meta.transact(ops).await, started)?;
        if let Attempt::Done(_) = attempt {
            if let Some(attached) = attached {
                attached.committed(app);
            }
            update_event(app, &update, "started").await;
        }
        Ok(attempt)
    })?;
    started
        .ok_or_else(|| Error::Conflict("the stack is being changed concurrently, try again".into()))
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

/// What publishing an update's state reads besides immutable blobs: equal inputs publish the
/// same version.
#[derive(PartialEq)]
struct PublishInputs {
    version: i64,
    base: Option<String>,
    journal_cursor: Option<String>,
    checkpoint_seq: i64,
    checkpoint_chain: Option<super::chain::Chain>,
    status: Status,
}

impl PublishInputs {
    fn of(update: &Update, stack: &stacks::Stack, version: i64) -> PublishInputs {
        PublishInputs {
            version,
            base: stack.deployment_key.clone(),
            journal_cursor: update.journal_cursor.clone(),
            checkpoint_seq: update.checkpoint_seq,
            checkpoint_chain: update.checkpoint_chain.clone(),
            status: update.status,
        }
    }
}

/// The update as it now is, and whether this call ended it.
pub(super) async fn end(
    app: &App,
    update: Update,
    status: Status,
    expired_only: bool,
) -> Result<(Update, bool)> {
    let meta = app.ports.meta.as_ref();
    let mut update = update;
    // What the last attempt published, and from what: a retry whose inputs are unchanged (it
    // lost only to a write that moved nothing it reads, such as the materialise job recording
    // a snapshot) reuses it instead of replaying the whole journal again.
    let mut published_before: Option<(PublishInputs, Published)> = None;
    let mut budget = call_records::Budget::default();
    let ended = retry_on_conflict!(8, async {
        if update.status.is_final() {
            return Ok(Attempt::Done((update.clone(), false)));
        }
        let now = app.clock.now();
        if expired_only && (update.status != Status::Running || update.is_live(now)) {
            return Ok(Attempt::Done((update.clone(), false)));
        }
        let stack = meta
            .get(
                &item_keys::org_pk(&update.org),
                &item_keys::stack_sk(&update.project, &update.stack),
            )
            .await?
            .map(|i| stacks::Stack::from_item(&i))
            .transpose()?
            .filter(|s| s.id == update.stack_id);
        let creator = stack.as_ref().and_then(|s| s.creator.clone());
        let mut ended = update.clone();
        ended.status = status;
        ended.ended = Some(now);
        let mut ops = Vec::new();
        let mut published_bytes = 0;
        match stack {
            // The stack was force-deleted meanwhile: just end the update.
            None => {}
            Some(mut stack) => {
                if !update.dry_run && update.status == Status::Running {
                    let version = stack.version + 1;
                    let inputs = PublishInputs::of(&update, &stack, version);
                    let reused = match published_before.take() {
                        Some((before, published)) if before == inputs => Some(Ok(published)),
                        _ => None,
                    };
                    let outcome = match reused {
                        Some(published) => published,
                        None => publish_checkpoint(app, &update, &stack, version).await,
                    };
                    let Published { key, summary, degraded, bytes } = match outcome {
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
                                error = %e.chain(),
                                "the update's stored state cannot be published; ending it \
                                 with the stack's current state"
                            );
                            Published::unchanged(&stack, true)
                        }
                        Err(e) => return Err(e),
                    };
                    published_bytes = bytes;
                    let published =
                        Published { key: key.clone(), summary: summary.clone(), degraded, bytes };
                    published_before = Some((inputs, published));
                    if degraded {
                        // Part of the journal could not be replayed: never report success.
                        ended.status = Status::Failed;
                    }
                    ended.version = Some(version);
                    stack.version = version;
                    stack.deployment_key = key.clone();
                    stack.resource_count = Some(summary.resource_count);
                    stack.last_update = Some(now);
                    stack.last_result = Some(ended.status.result().to_string());
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
            ops.extend(crate::service::reaper::release_ops(&update, now));
        }
        ops.push(update.put_op_as(&ended));
        // One audit entry for all of the update's lease calls, and the organization's event,
        // in the same transaction while the budget lasts (`service::call_records`).
        let records = if update.status == Status::Running {
            Some(call_records::Records::new(
                &update.org,
                audit::update_ended_entry(app, &ended).await?,
                feed::update_ended_event(&ended, creator),
            ))
        } else {
            None
        };
        let staged = match &records {
            Some(records) if budget.take() => Some(records.stage(app, &mut ops).await?),
            _ => None,
        };
        if let Attempt::Raced = written(meta.transact(ops).await, ())? {
            update = get(meta, &update.stack_id, &update.id).await?;
            return Ok(Attempt::Raced);
        }
        ended.rev = update.rev + 1;
        // Webhooks hear of updates that started (a cancelled, never started one had no
        // `started` event either).
        if let Some(records) = records {
            let recorded = async {
                match staged {
                    Some(staged) => staged.committed(app),
                    None => records.write(app).await,
                }
            };
            let ok = ended.status == Status::Succeeded;
            // Independent writes, made together (one sync on the embedded store).
            tokio::join!(
                recorded,
                update_event(app, &ended, if ok { "succeeded" } else { "failed" }),
                // Its calls are counted in the summary: the bucket's mirror can go.
                crate::service::ratelimit::update_ended(app, update.id.as_str()),
            );
            app.metrics.observe_update(&ended.metrics(published_bytes));
        }
        Ok(Attempt::Done((ended, true)))
    })?;
    ended
        .ok_or_else(|| Error::Conflict("the stack is being changed concurrently, try again".into()))
}

/// Queues the webhook deliveries of an update event (`import` and `rename` have none).
pub(super) async fn update_event(app: &App, update: &Update, result: &str) {
    use crate::service::webhook_deliveries::{emit, update_event_kind, DomainEvent, UpdateInfo};
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
            id: update.id.to_string(),
            operation: operation.to_string(),
            result: result.to_string(),
            version: update.version,
            resource_changes: update
                .resource_changes
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
        }),
        deployment: None,
    };
    emit(app, &event).await;
}

/// `pulumi cancel`: ends the update as cancelled; its lease stops working at once.
pub async fn cancel(app: &App, r: &StackRef, update_id: &UpdateId) -> Result<()> {
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
    let stack = stacks::get(app.ports.meta.as_ref(), r).await?;
    let update = create(app, &stack, "import", author, program, None).await?;
    start(app, r, Some(stack), &update.id, None, false, "").await?;
    let update = get(app.ports.meta.as_ref(), &update.stack_id, &update.id).await?;
    save_checkpoint(app, &update, deployments::gzip(untyped)?).await?;
    finalize(app, update, Status::Succeeded).await
}
