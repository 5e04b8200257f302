//! Route handlers: parse and validate the request, call the domain, shape the reply.
//! Authorization is not theirs: dispatch checked the route's declared permission before.

pub mod audit;
pub mod deploy;
pub mod drift;
pub mod environments;
pub mod feed;
pub mod health;
pub mod identity;
pub mod openapi;
pub mod orgs;
pub mod policy_packs;
pub mod references;
pub mod registry;
pub mod resources;
pub mod schedules;
pub mod search;
pub mod secrets;
pub mod stack_search;
pub mod stacks;
pub mod teams;
pub mod timeline;
pub mod tokens;
pub mod updates;
pub mod webhooks;

use crate::api::Ctx;
use crate::error::{Error, Result};
use crate::names::{OrgName, StackRef};

/// The caller's organizations, sorted; only `orgLogin` when the query names one of them (the
/// registry's and the policy registry's lists).
pub async fn caller_orgs(ctx: &Ctx) -> Result<Vec<String>> {
    let meta = ctx.app.ports.meta.as_ref();
    let mut orgs: Vec<String> =
        crate::service::identity::principal_orgs(meta, ctx.caller.principal()?)
            .await?
            .into_iter()
            .map(|(o, _)| o)
            .collect();
    orgs.sort();
    if let Some(only) = ctx.query("orgLogin").filter(|o| !o.is_empty()) {
        orgs.retain(|o| o == only);
    }
    Ok(orgs)
}

/// The `{org}` path parameter, validated.
pub fn path_org(ctx: &Ctx) -> Result<OrgName> {
    OrgName::parse(ctx.param("org")?)
}

/// The `{org}/{project}/{stack}` path parameters, validated.
pub fn path_stack(ctx: &Ctx) -> Result<StackRef> {
    crate::api::auth::stack_ref(&ctx.params)
}

/// The `{version}` path parameter: a stack version, a positive integer.
pub fn path_version(ctx: &Ctx) -> Result<i64> {
    ctx.param("version")?
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| Error::BadRequest("the version must be a positive integer".into()))
}
