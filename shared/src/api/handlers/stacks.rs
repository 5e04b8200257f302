//! Stack routes: list, project check, create, get, delete, tags, export.

use std::collections::BTreeMap;

use super::{path_org, path_stack, path_version};
use crate::api::{Ctx, Reply};
use bytes::Bytes;

use crate::apitype::{CreateStackRequest, ListStacksResponse, OperationStatus};
use crate::error::{Error, Result};
use crate::names::{ProjectName, StackName, StackRef};
use crate::service::access::StackPermission;
use crate::service::identity::Subject;
use crate::service::stacks::{self, ListFilter};
use crate::service::{deployments, history, teams, updates};

/// `GET /api/user/stacks`: the caller's stacks, filtered, one page at a time.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let filter = ListFilter {
        organization: ctx.query("organization").map(str::to_string),
        project: ctx.query("project").map(str::to_string),
        tag_name: ctx.query("tagName").map(str::to_string),
        tag_value: ctx.query("tagValue").map(str::to_string),
    };
    let (found, next) = stacks::list(
        ctx.app.ports.meta.as_ref(),
        ctx.caller.principal()?,
        &filter,
        ctx.query("continuationToken"),
    )
    .await?;
    Reply::json(&ListStacksResponse {
        stacks: found.iter().map(stacks::Stack::to_summary).collect(),
        continuation_token: next,
    })
}

/// `HEAD /api/stacks/{org}/{project}`: 200 when the project has a stack, else 404.
pub async fn project_exists(ctx: Ctx) -> Result<Reply> {
    let project = ProjectName::parse(ctx.param("project")?)?;
    let org = path_org(&ctx)?;
    if stacks::project_exists(ctx.app.ports.meta.as_ref(), &org, &project).await? {
        Ok(Reply::ok_empty())
    } else {
        Err(Error::NotFound(format!("project '{org}/{project}' not found")))
    }
}

/// `POST /api/stacks/{org}/{project}`: creates a stack.
pub async fn create(ctx: Ctx) -> Result<Reply> {
    let project = ProjectName::parse(ctx.param("project")?)?;
    let req: CreateStackRequest = ctx.json()?;
    let stack = StackName::parse(&req.stack_name)?;
    let state = match &req.state {
        Some(state) => {
            let bytes = serde_json::to_vec(state).map_err(|e| Error::caused("JSON encoding", e))?;
            deployments::check_untyped(&bytes, 1..=4)?;
            Some(bytes)
        }
        None => None,
    };
    if req.config.is_some() {
        return Err(Error::BadRequest(
            "stacks with remote (ESC) configuration are not supported".into(),
        ));
    }
    let org = path_org(&ctx)?;
    let r = StackRef { org, project, stack };
    let created = stacks::create(
        ctx.app.ports.meta.as_ref(),
        &r,
        req.tags.unwrap_or_default(),
        ctx.caller.principal()?.user(),
    )
    .await?;
    // A team token's stacks belong to its team: without this grant the team could not even
    // see the stack it just made (a user creating a stack is its admin through `creator`).
    if let Subject::Team { team, .. } = &ctx.caller.principal()?.subject {
        let meta = ctx.app.ports.meta.as_ref();
        teams::set_stack_permission(meta, r.org.as_str(), team, &created, StackPermission::Admin)
            .await?;
    }
    stack_event(&ctx, &created, "stack_created").await?;
    if let Some(state) = state {
        updates::import(&ctx.app, &r, ctx.caller.user()?, &state).await?;
    }
    Ok(Reply::json(&created.to_api())?.about(&created))
}

/// `GET /api/stacks/{org}/{project}/{stack}`.
pub async fn get(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let stack = ctx.stack().await?;
    let mut api = stack.to_api();
    if let Some(update) = updates::live_update(meta, &stack, ctx.app.clock.now()).await? {
        api.current_operation = Some(OperationStatus {
            kind: update.kind,
            author: update.author,
            started: update.started.unwrap_or(update.created),
        });
    }
    Reply::json(&api)
}

/// `DELETE /api/stacks/{org}/{project}/{stack}?force=`.
pub async fn delete(ctx: Ctx) -> Result<Reply> {
    let force = ctx.query_bool("force")?;
    let r = path_stack(&ctx)?;
    let deleted =
        stacks::delete(ctx.app.ports.meta.as_ref(), &r, force, ctx.app.clock.now()).await?;
    // The stack is gone either way; leftover grants only linger on team pages, so log.
    if let Err(e) = crate::service::teams::forget_stack(ctx.app.ports.meta.as_ref(), &deleted).await
    {
        tracing::warn!(error = %e, stack = %r, "team grants of a deleted stack remain");
    }
    stack_event(&ctx, &deleted, "stack_deleted").await?;
    Ok(Reply::no_content())
}

/// Queues the webhook deliveries of a stack event (never fails the call over the queue).
async fn stack_event(ctx: &Ctx, stack: &stacks::Stack, kind: &str) -> Result<()> {
    let event = crate::service::webhook_deliveries::DomainEvent {
        org: stack.org.clone(),
        project: stack.project.clone(),
        stack: stack.stack.clone(),
        stack_id: stack.id.clone(),
        kind: kind.to_string(),
        user: ctx.caller.user()?.to_string(),
        update: None,
        deployment: None,
    };
    crate::service::webhook_deliveries::emit(&ctx.app, &event).await;
    Ok(())
}

/// `PATCH /api/stacks/{org}/{project}/{stack}/tags`: replaces all tags with the body's map.
pub async fn update_tags(ctx: Ctx) -> Result<Reply> {
    let tags: BTreeMap<String, String> = ctx.json()?;
    let r = path_stack(&ctx)?;
    stacks::replace_tags(ctx.app.ports.meta.as_ref(), &r, tags).await?;
    Ok(Reply::no_content())
}

async fn deployment_reply(ctx: &Ctx, key: Option<&str>) -> Result<Reply> {
    let Some(key) = key else {
        return Ok(Reply::raw_json(Bytes::from_static(deployments::EMPTY.as_bytes())));
    };
    let gz = ctx
        .app
        .ports
        .blobs
        .get(key)
        .await?
        .ok_or_else(|| Error::internal(format!("deployment blob {key} is missing")))?;
    // The stored object is exactly the response body: Lambda redirects to it when too large.
    Ok(Reply::gzipped_json_blob(gz, key))
}

/// `GET /api/stacks/{org}/{project}/{stack}/export`: the current deployment.
pub async fn export(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    deployment_reply(&ctx, stack.deployment_key.as_deref()).await
}

/// `GET …/export/{version}`: the deployment of one version.
pub async fn export_version(ctx: Ctx) -> Result<Reply> {
    let version = path_version(&ctx)?;
    let stack = ctx.stack().await?;
    let entry = history::get(ctx.app.ports.meta.as_ref(), &stack.id, version).await?;
    deployment_reply(&ctx, entry.deployment_key.as_deref()).await
}

/// A page of history (`apitype.GetHistoryResponse`): `UpdateInfo`s as recorded.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "GetHistoryResponse"))]
pub(crate) struct History<'a> {
    updates: Vec<&'a serde_json::Value>,
}

/// One history entry (`apitype.GetUpdateResponse`'s `info`).
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "GetUpdateResponse"))]
pub(crate) struct HistoryEntry<'a> {
    info: &'a serde_json::Value,
}

/// The update an import recorded (`apitype.ImportStackResponse`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ImportStackResponse"))]
pub(crate) struct Imported {
    update_id: crate::names::UpdateId,
}

/// `GET …/updates?pageSize=&page=`: history, newest first.
pub async fn history(ctx: Ctx) -> Result<Reply> {
    let parse = |name: &str| -> Result<Option<i64>> {
        ctx.query(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| Error::BadRequest(format!("{name} must be an integer")))
            })
            .transpose()
    };
    // Saturating: a page or size past usize (32-bit targets) reads as "very large".
    let to_usize = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    let page_size = parse("pageSize")?.filter(|s| *s > 0).map(to_usize);
    let page = to_usize(parse("page")?.unwrap_or(1).max(1));
    let stack = ctx.stack().await?;
    let entries = history::list(ctx.app.ports.meta.as_ref(), &stack.id, page, page_size).await?;
    let infos: Vec<&serde_json::Value> = entries.iter().map(|e| &e.info).collect();
    Reply::json(&History { updates: infos })
}

/// `GET …/updates/latest`: the newest history entry; 404 when there is none.
pub async fn history_latest(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let entry =
        history::latest(ctx.app.ports.meta.as_ref(), &stack.id).await?.ok_or_else(|| {
            let r = format!("{}/{}/{}", stack.org, stack.project, stack.stack);
            Error::NotFound(format!("stack '{r}' has no previous deployment"))
        })?;
    Reply::json(&HistoryEntry { info: &entry.info })
}

/// `GET …/updates/{version}`: one history entry.
pub async fn history_version(ctx: Ctx) -> Result<Reply> {
    let version = path_version(&ctx)?;
    let stack = ctx.stack().await?;
    let entry = history::get(ctx.app.ports.meta.as_ref(), &stack.id, version).await?;
    Reply::json(&HistoryEntry { info: &entry.info })
}

/// `POST …/import`: replaces the stack's state with the given deployment.
pub async fn import(ctx: Ctx) -> Result<Reply> {
    let r = path_stack(&ctx)?;
    let update = updates::import(&ctx.app, &r, ctx.caller.user()?, &ctx.body).await?;
    Reply::json(&Imported { update_id: update.id })
}

/// `POST …/rename` body.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RenameRequest {
    new_name: String,
    #[serde(default)]
    new_project: Option<String>,
}

/// `POST …/rename` `{"newName","newProject"}`: renames the stack, and possibly its project,
/// within its organization (docs/PROTOCOL-NOTES.md, Stacks, #12). A missing `newProject` keeps
/// the project.
pub async fn rename(ctx: Ctx) -> Result<Reply> {
    let req: RenameRequest = ctx.json()?;
    let new_stack = StackName::parse(&req.new_name)?;
    let new_project = req.new_project.as_deref().map(ProjectName::parse).transpose()?;
    let r = path_stack(&ctx)?;
    let new_project = new_project.unwrap_or_else(|| r.project.clone());
    crate::service::rename::rename(&ctx.app, &r, &new_project, &new_stack, ctx.caller.user()?)
        .await?;
    // Team pages show stack names; the rename is done either way, so a failure here is only
    // logged (the grants themselves follow the stack id and still hold).
    let meta = ctx.app.ports.meta.as_ref();
    let renamed = StackRef { org: r.org.clone(), project: new_project, stack: new_stack };
    let restamped = match stacks::get(meta, &renamed).await {
        Ok(stack) => crate::service::teams::restamp_stack(meta, &stack).await,
        Err(e) => Err(e),
    };
    if let Err(e) = restamped {
        tracing::warn!(error = %e, stack = %renamed, "team pages keep the old stack name");
    }
    Ok(Reply::no_content())
}
