//! `GET /api/orgs/{org}/events`: the organization's event stream in order after a number,
//! optionally waiting (long-poll) for the next event (`service::feed`).

use std::time::Duration;

use serde::Serialize;

use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::names::{OrgName, ProjectName, StackName, StackRef};
use crate::ports::MetadataStore;
use crate::service::access::{OrgAccess, StackPermission};
use crate::service::feed::{self, read::MAX_WAIT_SECONDS, WireEvent};
use crate::service::stacks::{self, Stack};

/// Events per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`.
const MAX_LIMIT: usize = 1000;

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "OrgEventsPage"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listing {
    /// The events the caller may see, in order.
    events: Vec<WireEvent>,
    /// The number to pass as `after` next time (events the caller may not see are skipped).
    next: i64,
}

/// The stack named by a `stack=<project>/<stack>` query value, which the caller must be able
/// to read (404 otherwise, as for the stack's own routes). Shared by the long-poll route and
/// the WebSocket's `$connect`.
pub(crate) async fn readable_stack(
    meta: &dyn MetadataStore,
    access: &mut OrgAccess,
    org: &OrgName,
    value: &str,
) -> Result<(StackRef, Stack)> {
    let (project, stack) = value.split_once('/').ok_or_else(|| {
        Error::BadRequest(format!("stack must be <project>/<stack>, not {value:?}"))
    })?;
    let r = StackRef {
        org: org.clone(),
        project: ProjectName::parse(project)?,
        stack: StackName::parse(stack)?,
    };
    let found = stacks::get(meta, &r).await?;
    if access.stack_permission(meta, &found, StackPermission::Read).await? < StackPermission::Read {
        return Err(Error::NotFound(format!("stack '{r}' not found")));
    }
    Ok((r, found))
}

/// The id of the stack the `stack` parameter scopes the listing to, if any.
async fn scoped_stack(ctx: &Ctx, org: &OrgName) -> Result<Option<String>> {
    let Some(v) = ctx.query("stack") else { return Ok(None) };
    let meta = ctx.app.ports.meta.as_ref();
    let mut access = OrgAccess::resolve(meta, ctx.caller.principal()?, org.as_str()).await?;
    let (_, found) = readable_stack(meta, &mut access, org, v).await?;
    Ok(Some(found.id.to_string()))
}

/// `GET /api/orgs/{org}/events?after=&limit=&wait=&stack=`.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let after = ctx.query_number("after", 0..=i64::MAX, 0)?;
    let limit = ctx.query_number("limit", 1..=MAX_LIMIT as i64, DEFAULT_LIMIT as i64)?;
    let wait = ctx.query_number("wait", 0..=MAX_WAIT_SECONDS as i64, 0)?;
    let ask = feed::read::Ask {
        after,
        limit: usize::try_from(limit).unwrap_or(DEFAULT_LIMIT),
        wait: Duration::from_secs(u64::try_from(wait).unwrap_or(0)),
        stack_id: scoped_stack(&ctx, &org).await?,
    };
    let page = feed::read::read(&ctx.app, ctx.caller.principal()?, org.as_str(), ask).await?;
    Reply::json(&Listing {
        events: page.events.into_iter().map(WireEvent::from).collect(),
        next: page.next,
    })
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "OrgPresence"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Presence {
    /// The running updates the caller may see.
    updates: Vec<RunningUpdate>,
    /// Who watches a stack the caller may see over the event stream's WebSocket.
    viewers: Vec<Viewer>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "StackViewer"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Viewer {
    /// Who.
    user: String,
    /// `<project>/<stack>`.
    stack: String,
    /// The update they watch, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    update_id: Option<String>,
    /// When they connected (Unix seconds).
    since: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "RunningUpdate"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunningUpdate {
    update_id: String,
    /// `update`, `preview`, `refresh` or `destroy`.
    kind: String,
    project: String,
    stack: String,
    /// Who runs it.
    user: String,
    /// Unix seconds.
    started: i64,
    /// When its CLI last renewed the lease (Unix seconds).
    last_heartbeat: i64,
    /// False once the CLI stopped renewing (until the lease reaper ends the update).
    online: bool,
}

/// `GET /api/orgs/{org}/presence`: the updates running now.
pub async fn presence(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let running = feed::presence::running(&ctx.app, ctx.caller.principal()?, org.as_str()).await?;
    let updates = running
        .into_iter()
        .map(|r| {
            let u = r.update;
            RunningUpdate {
                update_id: u.id.to_string(),
                kind: if u.dry_run { "preview".into() } else { u.kind },
                project: u.project,
                stack: u.stack,
                user: u.author,
                started: u.started.unwrap_or(u.created),
                last_heartbeat: r.last_heartbeat,
                online: r.online,
            }
        })
        .collect();
    let viewers = feed::presence::viewers(&ctx.app, ctx.caller.principal()?, org.as_str())
        .await?
        .into_iter()
        .map(|v| Viewer { user: v.user, stack: v.stack, update_id: v.update_id, since: v.since })
        .collect();
    Reply::json(&Presence { updates, viewers })
}
