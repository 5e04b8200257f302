//! Route handlers: parse and validate the request, call the domain, shape the reply.

pub mod identity;
pub mod secrets;
pub mod stacks;
pub mod updates;
pub mod webhooks;

use crate::api::Ctx;
use crate::error::Result;
use crate::names::{OrgName, ProjectName, StackName, StackRef};
use crate::service::identity::{require_member, Role};

/// The `{org}` path parameter, validated, after checking the caller belongs to it.
pub async fn authorized_org(ctx: &Ctx) -> Result<(OrgName, Role)> {
    let org = OrgName::parse(ctx.param("org")?)?;
    let role =
        require_member(ctx.app.ports.meta.as_ref(), ctx.caller.user()?, org.as_str()).await?;
    Ok((org, role))
}

/// The `{org}/{project}/{stack}` path parameters, validated and authorized.
pub async fn authorized_stack(ctx: &Ctx) -> Result<StackRef> {
    let project = ProjectName::parse(ctx.param("project")?)?;
    let stack = StackName::parse(ctx.param("stack")?)?;
    let (org, _) = authorized_org(ctx).await?;
    Ok(StackRef { org, project, stack })
}
