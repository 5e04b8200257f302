//! Stack routes: list, project check, create, get, delete, tags, export.

use std::collections::BTreeMap;

use super::{authorized_org, authorized_stack};
use crate::api::{Ctx, Reply};
use crate::apitype::{CreateStackRequest, ListStacksResponse};
use crate::error::{Error, Result};
use crate::names::{ProjectName, StackName, StackRef};
use crate::service::stacks::{self, ListFilter};

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
        ctx.caller.user()?,
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
    let (org, _) = authorized_org(&ctx).await?;
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
    if req.state.is_some() {
        return Err(Error::BadRequest(
            "creating a stack with an initial state is not supported yet; create it, then `pulumi stack import`"
                .into(),
        ));
    }
    if req.config.is_some() {
        return Err(Error::BadRequest(
            "stacks with remote (ESC) configuration are not supported".into(),
        ));
    }
    let (org, _) = authorized_org(&ctx).await?;
    let r = StackRef { org, project, stack };
    let created =
        stacks::create(ctx.app.ports.meta.as_ref(), &r, req.tags.unwrap_or_default()).await?;
    Reply::json(&created.to_api())
}

/// `GET /api/stacks/{org}/{project}/{stack}`.
pub async fn get(ctx: Ctx) -> Result<Reply> {
    let r = authorized_stack(&ctx).await?;
    let stack = stacks::get(ctx.app.ports.meta.as_ref(), &r).await?;
    Reply::json(&stack.to_api())
}

/// `DELETE /api/stacks/{org}/{project}/{stack}?force=`.
pub async fn delete(ctx: Ctx) -> Result<Reply> {
    let force = ctx.query_bool("force")?;
    let r = authorized_stack(&ctx).await?;
    stacks::delete(ctx.app.ports.meta.as_ref(), &r, force).await?;
    Ok(Reply::no_content())
}

/// `PATCH /api/stacks/{org}/{project}/{stack}/tags`: replaces all tags with the body's map.
pub async fn update_tags(ctx: Ctx) -> Result<Reply> {
    let tags: BTreeMap<String, String> = ctx.json()?;
    let r = authorized_stack(&ctx).await?;
    stacks::replace_tags(ctx.app.ports.meta.as_ref(), &r, tags).await?;
    Ok(Reply::no_content())
}

/// The export of a stack that has never been updated: a valid, empty v3 deployment.
const EMPTY_DEPLOYMENT: &str = r#"{"version":3,"deployment":{"manifest":{"time":"0001-01-01T00:00:00Z","magic":"","version":""}}}"#;

/// `GET /api/stacks/{org}/{project}/{stack}/export`.
pub async fn export(ctx: Ctx) -> Result<Reply> {
    let r = authorized_stack(&ctx).await?;
    let stack = stacks::get(ctx.app.ports.meta.as_ref(), &r).await?;
    if stack.version == 0 {
        return Ok(Reply::raw_json(bytes::Bytes::from_static(EMPTY_DEPLOYMENT.as_bytes())));
    }
    Err(Error::Internal(format!(
        "stack '{r}' has version {} but no stored deployment",
        stack.version
    )))
}
