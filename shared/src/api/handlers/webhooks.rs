//! Webhook routes (Pulumi Cloud's REST API shape): organization hooks under
//! `/api/orgs/{org}/hooks` and stack hooks under `/api/stacks/{org}/{project}/{stack}/hooks`.
//! Any member of the organization may manage them.

use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::Result;
use crate::service::webhook_deliveries as deliveries;
use crate::service::webhooks::{self, HookRequest, HookResponse, Owner};

async fn org_owner(ctx: &Ctx) -> Result<Owner> {
    let org = path_org(ctx)?;
    Ok(Owner::Org { org: org.to_string() })
}

async fn stack_owner(ctx: &Ctx) -> Result<Owner> {
    let stack = ctx.stack().await?;
    Ok(Owner::Stack {
        org: stack.org,
        project: stack.project,
        stack: stack.stack,
        stack_id: stack.id,
    })
}

async fn create(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let req: HookRequest = ctx.json()?;
    let hook = webhooks::create(&ctx.app, &owner, req).await?;
    Reply::json(&hook.to_api(&owner))
}

async fn list(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let hooks = webhooks::list(ctx.app.ports.meta.as_ref(), &owner).await?;
    let out: Vec<HookResponse> = hooks.iter().map(|h| h.to_api(&owner)).collect();
    Reply::json(&out)
}

async fn get(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let hook = webhooks::get(ctx.app.ports.meta.as_ref(), &owner, ctx.param("hook")?).await?;
    Reply::json(&hook.to_api(&owner))
}

async fn update(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let req: HookRequest = ctx.json()?;
    let hook = webhooks::update(&ctx.app, &owner, ctx.param("hook")?, req).await?;
    Reply::json(&hook.to_api(&owner))
}

async fn delete(ctx: Ctx, owner: Owner) -> Result<Reply> {
    webhooks::delete(ctx.app.ports.meta.as_ref(), &owner, ctx.param("hook")?).await?;
    Ok(Reply::no_content())
}

async fn list_deliveries(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let name = ctx.param("hook")?;
    let meta = ctx.app.ports.meta.as_ref();
    webhooks::get(meta, &owner, name).await?;
    Reply::json(&deliveries::list(meta, &owner, name).await?)
}

async fn redeliver(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let d =
        deliveries::redeliver(&ctx.app, &owner, ctx.param("hook")?, ctx.param("delivery")?).await?;
    Reply::json(&d)
}

async fn ping(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let d = deliveries::ping(&ctx.app, &owner, ctx.param("hook")?, ctx.caller.user()?).await?;
    Reply::json(&d)
}

/// `GET /api/orgs/{org}/hooks/{hook}/deliveries`: the newest deliveries, newest first.
pub async fn org_deliveries(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    list_deliveries(ctx, owner).await
}

/// `POST /api/orgs/{org}/hooks/{hook}/deliveries/{delivery}/redeliver`.
pub async fn org_redeliver(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    redeliver(ctx, owner).await
}

/// `POST /api/orgs/{org}/hooks/{hook}/ping`: delivers a ping now and returns the delivery.
pub async fn org_ping(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    ping(ctx, owner).await
}

/// `GET /api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries`.
pub async fn stack_deliveries(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    list_deliveries(ctx, owner).await
}

/// `POST /api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries/{delivery}/redeliver`.
pub async fn stack_redeliver(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    redeliver(ctx, owner).await
}

/// `POST /api/stacks/{org}/{project}/{stack}/hooks/{hook}/ping`.
pub async fn stack_ping(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    ping(ctx, owner).await
}

/// `POST /api/orgs/{org}/hooks`.
pub async fn org_create(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    create(ctx, owner).await
}

/// `GET /api/orgs/{org}/hooks`.
pub async fn org_list(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    list(ctx, owner).await
}

/// `GET /api/orgs/{org}/hooks/{hook}`.
pub async fn org_get(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    get(ctx, owner).await
}

/// `PATCH /api/orgs/{org}/hooks/{hook}`.
pub async fn org_update(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    update(ctx, owner).await
}

/// `DELETE /api/orgs/{org}/hooks/{hook}`.
pub async fn org_delete(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx).await?;
    delete(ctx, owner).await
}

/// `POST /api/stacks/{org}/{project}/{stack}/hooks`.
pub async fn stack_create(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    create(ctx, owner).await
}

/// `GET /api/stacks/{org}/{project}/{stack}/hooks`.
pub async fn stack_list(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    list(ctx, owner).await
}

/// `GET /api/stacks/{org}/{project}/{stack}/hooks/{hook}`.
pub async fn stack_get(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    get(ctx, owner).await
}

/// `PATCH /api/stacks/{org}/{project}/{stack}/hooks/{hook}`.
pub async fn stack_update(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    update(ctx, owner).await
}

/// `DELETE /api/stacks/{org}/{project}/{stack}/hooks/{hook}`.
pub async fn stack_delete(ctx: Ctx) -> Result<Reply> {
    let owner = stack_owner(&ctx).await?;
    delete(ctx, owner).await
}
