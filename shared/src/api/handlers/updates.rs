//! Update routes: create, start, renew the lease, checkpoint, events, complete, cancel, and the
//! status poll (docs/PROTOCOL-NOTES.md, Update lifecycle).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value as Json;

use super::path_stack;
use crate::api::{auth, Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::updates::{self, Program, Status};
use crate::service::{call_records, deployments, events};

/// The `{kind}` path segment: every per-update sub-resource accepts the four program kinds.
fn kind(ctx: &Ctx) -> Result<&str> {
    let kind = ctx.param("kind")?;
    if updates::PROGRAM_KINDS.contains(&kind) {
        Ok(kind)
    } else {
        Err(Error::NotFound(format!("no route for update kind {kind:?}")))
    }
}

fn json_string(v: Option<&Json>, fallback: &str) -> String {
    v.filter(|v| !v.is_null()).map(Json::to_string).unwrap_or_else(|| fallback.to_string())
}

/// What [`create`] reads of its body (`apitype.UpdateProgramRequest`; the rest is ignored). The
/// handler reads the body as JSON and picks these by path, keeping `config` and `environment` as
/// sent; this type only describes them for the API description.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct UpdateProgramRequest {
    /// The stack's configuration, stored as sent.
    config: Option<Json>,
    /// `message` and `environment` (stored as sent).
    metadata: Option<UpdateMetadata>,
    /// Only `dryRun` (a preview) is read.
    options: Option<UpdateOptions>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct UpdateMetadata {
    message: Option<String>,
    environment: Option<Json>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct UpdateOptions {
    dry_run: Option<bool>,
}

/// The new update's id (`apitype.UpdateProgramResponse`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct UpdateCreated {
    #[serde(rename = "updateID")]
    update_id: crate::names::UpdateId,
    /// The policy packs the CLI must download and run during this update.
    #[serde(rename = "requiredPolicies", skip_serializing_if = "Vec::is_empty")]
    required_policies: Vec<crate::service::policy_packs::groups::RequiredPolicy>,
}

/// `POST /api/stacks/{org}/{project}/{stack}/{kind}`: creates an update.
pub async fn create(ctx: Ctx) -> Result<Reply> {
    let kind = kind(&ctx)?.to_string();
    let body: Json = ctx.json()?;
    if !body.is_object() {
        return Err(Error::BadRequest("the update request must be a JSON object".into()));
    }
    let r = path_stack(&ctx)?;
    let program = Program {
        dry_run: body.pointer("/options/dryRun").and_then(Json::as_bool).unwrap_or(false),
        config: json_string(body.get("config"), "{}"),
        message: body
            .pointer("/metadata/message")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        environment: json_string(body.pointer("/metadata/environment"), "{}"),
    };
    // Read first, so that a failure here leaves no update behind.
    let required_policies = crate::service::policy_packs::groups::required(
        &ctx.app,
        r.org.as_str(),
        r.project.as_str(),
        r.stack.as_str(),
    )
    .await?;
    let run = ctx.caller.principal()?.deployment.as_ref().map(|d| d.id.as_str());
    let author = ctx.caller.user()?;
    // The update's write is the call's last: its audit entry and event go with it.
    let stack = ctx.stack().await?;
    let created = updates::create(&ctx.app, &stack, &kind, author, program, run);
    let update = call_records::last_write(created).await?;
    Reply::json(&UpdateCreated { update_id: update.id, required_policies })
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartRequest {
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    journal_version: Option<i64>,
}

/// The CLI version from `User-Agent: pulumi-cli/1 (<version>; …)`, for journal manifests.
fn cli_version(ctx: &Ctx) -> String {
    ctx.headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split_once('(').map(|(_, rest)| rest))
        .and_then(|rest| rest.split([';', ')']).next())
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The lease of a started update (`apitype.StartUpdateResponse`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct StartResponse {
    /// The version the stack will have after the update.
    version: i64,
    /// The lease token (`Authorization: update-token …` of the update's calls).
    token: String,
    /// When the lease lapses unless renewed (Unix seconds).
    token_expiration: i64,
    /// 1 when the update persists journal entries instead of checkpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    journal_version: Option<i64>,
}

/// `POST …/{kind}/{update}`: starts the update and hands out its lease.
pub async fn start(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let req: StartRequest = if ctx.body.is_empty() { StartRequest::default() } else { ctx.json()? };
    let r = path_stack(&ctx)?;
    let journal = ctx.app.settings.journaling && req.journal_version == Some(1);
    let (id, cli) = (ctx.update_id()?, cli_version(&ctx));
    let read = ctx.stack.clone();
    let started = updates::start(&ctx.app, &r, read, &id, req.tags, journal, &cli);
    // The start's transaction is the call's last write: its audit entry and event go with it.
    let started = call_records::last_write(started).await?;
    // Only `journalVersion: 1` turns journaling on; without it the CLI sends checkpoints.
    Reply::json(&StartResponse {
        version: started.version,
        token: started.token,
        token_expiration: started.expires,
        journal_version: started.journal.then_some(1),
    })
}

/// An update's status (`apitype.UpdateResults`): events are served by `…/events`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct UpdateResults {
    /// `not started`, `running`, `succeeded`, `failed` or `cancelled`.
    status: &'static str,
    /// Always empty.
    events: Vec<Json>,
    /// Present while the update runs: poll again.
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_token: Option<String>,
}

/// `GET …/{kind}/{update}`: the update's status (polled by `pulumi stack import`).
pub async fn status(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let stack = ctx.stack().await?;
    let update = updates::get(ctx.app.ports.meta.as_ref(), &stack.id, &ctx.update_id()?).await?;
    Reply::json(&UpdateResults {
        status: update.status.results_status(),
        events: vec![],
        continuation_token: (!update.status.is_final()).then(|| "0".to_string()),
    })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RenewRequest {
    #[serde(default)]
    duration: Option<i64>,
}

/// The renewed lease (`apitype.RenewUpdateLeaseResponse`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RenewResponse {
    /// The same lease token.
    token: String,
    /// Its new expiry (Unix seconds).
    token_expiration: i64,
}

/// `POST …/renew_lease`: extends the lease; 403 once it has lapsed or was released.
pub async fn renew_lease(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let req: RenewRequest = ctx.json()?;
    let update = ctx.caller.lease()?.clone();
    let expires = updates::renew(&ctx.app, update, req.duration.unwrap_or(300)).await?;
    let token = auth::lease_token(&ctx.headers)?;
    Reply::json(&RenewResponse { token: token.to_string(), token_expiration: expires })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct CheckpointRequest<'a> {
    version: i64,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schemars(with = "serde_json::Value"))]
    deployment: &'a RawValue,
}

/// `PATCH …/checkpoint`: a full checkpoint of the deployment.
pub async fn checkpoint(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let req: CheckpointRequest = crate::api::body::parse_json(&ctx.body)?;
    deployments::check_parts(req.version, req.features.as_deref(), req.deployment, 3..=4)?;
    updates::save_checkpoint(&ctx.app, ctx.caller.lease()?, ctx.body_as_received()?).await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerbatimRequest<'a> {
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schemars(with = "serde_json::Value"))]
    untyped_deployment: &'a RawValue,
    sequence_number: i64,
}

/// `PATCH …/checkpointverbatim`: the exact bytes of the deployment, kept as the delta baseline.
pub async fn checkpoint_verbatim(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let req: VerbatimRequest = crate::api::body::parse_json(&ctx.body)?;
    let raw = req.untyped_deployment.get().as_bytes();
    updates::save_sequenced(
        &ctx.app,
        ctx.caller.lease()?,
        req.sequence_number,
        updates::Sequenced::Verbatim(raw),
    )
    .await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeltaRequest {
    checkpoint_hash: String,
    sequence_number: i64,
    deployment_delta: Vec<crate::service::delta::TextEdit>,
}

/// `PATCH …/checkpointdelta`: edits against the previous checkpoint; any 4xx makes the CLI
/// resend the same sequence number verbatim.
pub async fn checkpoint_delta(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let req: DeltaRequest = ctx.json()?;
    let delta = updates::Sequenced::Delta {
        edits: &req.deployment_delta,
        hash: &req.checkpoint_hash,
        received: ctx.body_as_received()?,
    };
    updates::save_sequenced(&ctx.app, ctx.caller.lease()?, req.sequence_number, delta).await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct JournalBatch {
    entries: Vec<crate::service::journal::JournalEntry>,
}

/// `PATCH …/journalentries`: one batch of journal entries. Batches over the limit get 413,
/// which makes the CLI split them in half.
pub async fn journal_entries(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    if ctx.body.len() > ctx.app.settings.max_journal_batch_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "journal batches are limited to {} bytes",
            ctx.app.settings.max_journal_batch_bytes
        )));
    }
    let batch: JournalBatch = ctx.json()?;
    let received = ctx.gzip_body.as_ref();
    updates::save_journal(&ctx.app, ctx.caller.lease()?, &batch.entries, received).await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct EventBatch<'a> {
    /// The engine events, each an object with a non-negative integer `sequence` (the server
    /// reads only that and a summary event's resource changes, and stores the batch as sent).
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schemars(with = "Vec<Json>"))]
    events: Vec<&'a RawValue>,
}

/// `POST …/events/batch`: stores engine events; duplicates are harmless.
pub async fn events_batch(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let batch: EventBatch = crate::api::body::parse_json(&ctx.body)?;
    let update = ctx.caller.lease()?;
    let checked = events::check_batch(&batch.events)?;
    let received = events::Received { gzip: ctx.gzip_body.as_ref(), plain: &ctx.body };
    events::store(&ctx.app, &update.id, &checked, received).await?;
    if let Some(changes) = &checked.summary {
        updates::record_resource_changes(&ctx.app, update, changes).await?;
    }
    // Stored first: a watcher that reconnects reads back whatever it missed live.
    crate::service::feed::fanout::engine_events(&ctx.app, &update.id, &batch.events).await;
    Ok(Reply::no_content())
}

/// A page of engine events (`apitype.GetUpdateEventsResponse`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct EventsPage {
    /// Engine events in sequence order.
    events: Vec<Json>,
    /// Where the next page starts; `null` once the update ended and every event was read.
    continuation_token: Option<String>,
}

/// `GET …/events?continuationToken=`: stored events in sequence order.
pub async fn events_list(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let from = match ctx.query("continuationToken") {
        Some(t) => {
            t.parse::<i64>().map_err(|_| Error::BadRequest("invalid continuationToken".into()))?
        }
        None => 0,
    };
    let stack = ctx.stack().await?;
    let update = updates::get(ctx.app.ports.meta.as_ref(), &stack.id, &ctx.update_id()?).await?;
    let (found, next) = events::read(&ctx.app, &update.id, from).await?;
    // While the update runs more events may come: keep the client polling from where it is.
    let next = next.or_else(|| {
        (!update.status.is_final()).then(|| {
            found
                .last()
                .and_then(|e| e.get("sequence"))
                .and_then(Json::as_i64)
                .map_or(from, |s| s.saturating_add(1))
        })
    });
    Reply::json(&EventsPage { events: found, continuation_token: next.map(|n| n.to_string()) })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct CompleteRequest {
    status: String,
}

/// `POST …/complete`: ends the update and publishes its state; retries get 2xx.
pub async fn complete(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let req: CompleteRequest = ctx.json()?;
    let status = match req.status.as_str() {
        "succeeded" => Status::Succeeded,
        "failed" => Status::Failed,
        "cancelled" => Status::Cancelled,
        other => {
            return Err(Error::BadRequest(format!(
                "status must be succeeded, failed or cancelled, not {other:?}"
            )))
        }
    };
    let update = ctx.caller.lease()?.clone();
    if update.status.is_final() {
        // A retry: answered as the first call was.
        return completed(status, &update);
    }
    if update.status != Status::Running {
        return Err(Error::Conflict("the update has not been started".into()));
    }
    let ended = updates::finalize(&ctx.app, update, status).await?;
    completed(status, &ended)
}

/// The answer to `complete`: never a 2xx for a success the server did not record as one.
fn completed(asked: Status, ended: &updates::Update) -> Result<Reply> {
    match (asked, ended.status) {
        (Status::Succeeded, Status::Cancelled) => {
            Err(Error::Conflict("the update was cancelled before it completed".into()))
        }
        (Status::Succeeded, Status::Failed) => Err(Error::BadRequest(
            "the update's journal could not be replayed in full (an entry is missing or does \
             not apply to the state): it is recorded as failed, and the stack keeps the state \
             that could be replayed"
                .into(),
        )),
        _ => Ok(Reply::no_content()),
    }
}

/// `POST …/cancel`: `pulumi cancel`.
pub async fn cancel(ctx: Ctx) -> Result<Reply> {
    kind(&ctx)?;
    let r = path_stack(&ctx)?;
    updates::cancel(&ctx.app, &r, &ctx.update_id()?).await?;
    Ok(Reply::no_content())
}
