//! A version's summary and timeline (Pulumi Cloud's `…/updates/{version}/summary`,
//! `…/updates/latest/timeline` and `…/updates/{version}/timeline`).

use serde::Serialize;

use super::orgs::UserInfo;
use super::path_version;
use crate::api::{Ctx, Reply};
use crate::error::Result;
use crate::service::timeline::{self, Shown};

/// `UpdateSummary`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "UpdateSummary"))]
pub(crate) struct UpdateSummary {
    /// `not-started`, `in-progress`, `succeeded` or `failed`.
    result: String,
    /// When it started (Unix seconds).
    start_time: i64,
    /// When it ended (Unix seconds).
    end_time: i64,
    /// Resources in the version it made.
    resource_count: i64,
}

/// `UpdateInfo` as the console's timeline has it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "UpdateInfo"))]
pub(crate) struct UpdateInfo {
    /// The update (`AppUpdateInfo`, as history has it).
    info: serde_json::Value,
    /// Its id.
    #[serde(rename = "updateID")]
    update_id: String,
    /// The stack version it made (previews: the one they ran against).
    version: i64,
    /// The stack's version now.
    latest_version: i64,
    /// Who asked for it.
    requested_by: UserInfo,
    /// The policy packs that ran: none (policy packs are not enforced yet).
    policy_packs: Vec<serde_json::Value>,
}

/// `GetUpdateTimelineResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "GetUpdateTimelineResponse"))]
pub(crate) struct Timeline {
    /// The update that made the version.
    update: UpdateInfo,
    /// Updates collated with it: none (Stackhouse does not group updates).
    collated_update_events: Vec<UpdateInfo>,
    /// Previews run after the version before ended and before this one started, oldest first.
    previews: Vec<UpdateInfo>,
}

/// `GET …/updates/{version}/summary`: how one version's update went.
pub async fn summary(ctx: Ctx) -> Result<Reply> {
    let version = path_version(&ctx)?;
    let stack = ctx.stack().await?;
    let entry = timeline::entry(ctx.app.ports.meta.as_ref(), &stack, Some(version)).await?;
    let n = |field: &str| entry.info[field].as_i64().unwrap_or(0);
    Reply::json(&UpdateSummary {
        result: entry.info["result"].as_str().unwrap_or("succeeded").to_string(),
        start_time: n("startTime"),
        end_time: n("endTime"),
        resource_count: n("resourceCount"),
    })
}

async fn timeline_of(ctx: Ctx, version: Option<i64>) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let found = timeline::of(ctx.app.ports.meta.as_ref(), &stack, version).await?;
    let shown = |s: Shown| UpdateInfo {
        info: s.info,
        update_id: s.update_id,
        version: s.version,
        latest_version: stack.version,
        requested_by: UserInfo::of(&s.author),
        policy_packs: Vec::new(),
    };
    Reply::json(&Timeline {
        update: shown(found.update),
        collated_update_events: Vec::new(),
        previews: found.previews.into_iter().map(shown).collect(),
    })
}

/// `GET …/updates/latest/timeline`: the latest version's timeline.
pub async fn latest_timeline(ctx: Ctx) -> Result<Reply> {
    timeline_of(ctx, None).await
}

/// `GET …/updates/{version}/timeline`: one version's timeline.
pub async fn version_timeline(ctx: Ctx) -> Result<Reply> {
    let version = path_version(&ctx)?;
    timeline_of(ctx, Some(version)).await
}
