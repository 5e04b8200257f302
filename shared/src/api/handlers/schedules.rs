//! Deployment schedules (Pulumi Cloud's `ScheduledAction`s of a stack) under
//! `/api/stacks/{org}/{project}/{stack}/deployments/schedules`: raw ones made there, drift and
//! TTL ones made under `…/drift/schedules` and `…/ttl/schedules` and read, paused, resumed and
//! deleted through the raw routes like any other.

use serde::Serialize;
use serde_json::Value as Json;

use crate::api::{Ctx, Reply};
use crate::error::Result;
use crate::service::deploy::cron::format_moment;
use crate::service::deploy::schedules::{self, Definition, Schedule, Timing};

/// `ScheduledAction`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct ScheduledAction {
    id: String,
    /// The organization's name (its id here).
    #[serde(rename = "orgID")]
    org_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_once: Option<String>,
    /// `2006-01-02 15:04:05.000` in UTC, as all times here; empty when it fires no more.
    next_execution: String,
    paused: bool,
    /// Always `deployment`.
    kind: &'static str,
    definition: ScheduledDefinition,
    created: String,
    modified: String,
    last_executed: Option<String>,
}

/// `definition` of a `deployment` schedule.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct ScheduledDefinition {
    /// The stack's id.
    #[serde(rename = "programID")]
    program_id: String,
    /// The `CreateDeploymentRequest` each run is made with.
    request: Json,
}

fn view(s: &Schedule) -> ScheduledAction {
    let (schedule_cron, schedule_once) = match &s.timing {
        Timing::Cron(c) => (Some(c.clone()), None),
        Timing::Once(t) => (None, Some(format_moment(*t))),
    };
    ScheduledAction {
        id: s.id.clone(),
        org_id: s.org.clone(),
        schedule_cron,
        schedule_once,
        next_execution: s.next.map(format_moment).unwrap_or_default(),
        paused: s.paused,
        kind: "deployment",
        definition: ScheduledDefinition {
            program_id: s.stack_id.clone(),
            request: s.request.clone(),
        },
        created: format_moment(s.created),
        modified: format_moment(s.modified),
        last_executed: s.last_executed.map(format_moment),
    }
}

/// `ListScheduledActionsResponse`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct ScheduleList {
    schedules: Vec<ScheduledAction>,
}

/// `ScheduledActionHistoryEvent`, with the run the window made (ours).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct HistoryEvent {
    id: String,
    #[serde(rename = "scheduledActionID")]
    scheduled_action_id: String,
    executed: String,
    version: i64,
    /// `succeeded`: a run was made; `failed`: none could be (`message` says why).
    result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// `ListScheduledActionHistoryResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct History {
    schedule_history_events: Vec<HistoryEvent>,
}

async fn create_with(
    ctx: Ctx,
    def: impl FnOnce(&Json, i64) -> Result<Definition>,
) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let def = def(&ctx.json()?, ctx.app.clock.now())?;
    let s = schedules::create(&ctx.app, &stack, ctx.caller.principal()?, def).await?;
    Reply::json(&view(&s))
}

async fn update_with(
    ctx: Ctx,
    def: impl FnOnce(&Json, i64) -> Result<Definition>,
) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let def = def(&ctx.json()?, ctx.app.clock.now())?;
    let id = ctx.param("schedule")?;
    let s = schedules::update(&ctx.app, &stack, id, ctx.caller.principal()?, def).await?;
    Reply::json(&view(&s))
}

/// `POST …/deployments/schedules`: `scheduleCron` or `scheduleOnce`, and the run's `request`.
pub async fn create(ctx: Ctx) -> Result<Reply> {
    create_with(ctx, Definition::raw).await
}

/// `POST …/deployments/schedules/{schedule}`: replaces the definition.
pub async fn update(ctx: Ctx) -> Result<Reply> {
    update_with(ctx, Definition::raw).await
}

/// `POST …/deployments/drift/schedules`: `scheduleCron`, `autoRemediate`.
pub async fn drift_create(ctx: Ctx) -> Result<Reply> {
    create_with(ctx, |body, _| Definition::drift(body)).await
}

pub async fn drift_update(ctx: Ctx) -> Result<Reply> {
    update_with(ctx, |body, _| Definition::drift(body)).await
}

/// `POST …/deployments/ttl/schedules`: `timestamp`, `deleteAfterDestroy`.
pub async fn ttl_create(ctx: Ctx) -> Result<Reply> {
    create_with(ctx, Definition::ttl).await
}

pub async fn ttl_update(ctx: Ctx) -> Result<Reply> {
    update_with(ctx, Definition::ttl).await
}

/// `GET …/deployments/schedules`: every schedule of the stack (raw, drift, TTL), oldest first.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let found = schedules::list(ctx.app.ports.meta.as_ref(), &stack).await?;
    Reply::json(&ScheduleList { schedules: found.iter().map(view).collect() })
}

/// `GET …/deployments/schedules/{schedule}`.
pub async fn get(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let s = schedules::get_of(ctx.app.ports.meta.as_ref(), &stack, ctx.param("schedule")?).await?;
    Reply::json(&view(&s))
}

/// `DELETE …/deployments/schedules/{schedule}`: 204 also when it is gone already (Pulumi
/// Cloud answers 200 with no body; its clients take either).
pub async fn delete(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    schedules::delete(&ctx.app, &stack, ctx.param("schedule")?).await?;
    Ok(Reply::no_content())
}

async fn pause_or_resume(ctx: Ctx, pause: bool) -> Result<Reply> {
    let stack = ctx.stack().await?;
    schedules::set_paused(&ctx.app, &stack, ctx.param("schedule")?, pause).await?;
    Ok(Reply::no_content())
}

/// `POST …/deployments/schedules/{schedule}/pause`.
pub async fn pause(ctx: Ctx) -> Result<Reply> {
    pause_or_resume(ctx, true).await
}

/// `POST …/deployments/schedules/{schedule}/resume`: windows missed while paused are skipped.
pub async fn resume(ctx: Ctx) -> Result<Reply> {
    pause_or_resume(ctx, false).await
}

/// `GET …/deployments/schedules/{schedule}/history`: the windows it fired, newest first.
pub async fn history(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let meta = ctx.app.ports.meta.as_ref();
    let s = schedules::get_of(meta, &stack, ctx.param("schedule")?).await?;
    let events = schedules::history(meta, &s)
        .await?
        .into_iter()
        .map(|e| HistoryEvent {
            id: format!("{}-{}", e.schedule, e.executed),
            scheduled_action_id: e.schedule,
            executed: format_moment(e.executed),
            version: e.version,
            result: e.result,
            deployment_id: e.deployment,
            message: e.message,
        })
        .collect();
    Reply::json(&History { schedule_history_events: events })
}

/// Whether the stack has schedules (for `…/deployments/metadata`).
pub(crate) async fn any(ctx: &Ctx, stack: &crate::service::stacks::Stack) -> Result<bool> {
    Ok(!schedules::list(ctx.app.ports.meta.as_ref(), stack).await?.is_empty())
}

/// `CreateScheduledDeploymentRequest` (read by [`Definition::raw`]; this type describes it).
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct RawRequest {
    /// 5-field cron, in UTC unless prefixed `CRON_TZ=<zone> `; or else `scheduleOnce`.
    schedule_cron: Option<String>,
    /// ISO 8601 with a zone.
    schedule_once: Option<String>,
    request: super::deploy::CreateRequest,
}

/// `CreateScheduledDriftDeploymentRequest`.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct DriftRequest {
    schedule_cron: String,
    auto_remediate: Option<bool>,
}

/// `CreateScheduledTTLDeploymentRequest`.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct TtlRequest {
    /// ISO 8601 with a zone, in the future.
    timestamp: String,
    delete_after_destroy: Option<bool>,
}
