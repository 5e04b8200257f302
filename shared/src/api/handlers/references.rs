//! StackReferences of a stack (Pulumi Cloud's `…/upstreamreferences` and
//! `…/downstreamreferences`), each listed only when the caller may read the stack it names.

use std::collections::HashMap;

use serde::Serialize;

use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::access::OrgAccess;
use crate::service::deployments;
use crate::service::references::{self, Referenced};
use crate::service::search::indexer::stacks_of;
use crate::service::stacks::{self, Stack};

/// `StackReference`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "StackReference"))]
pub(crate) struct StackReference {
    /// Its organization.
    organization: String,
    /// Its project.
    routing_project: String,
    /// Its name.
    name: String,
    /// Its current version.
    version: i64,
}

impl StackReference {
    fn of(stack: &Stack) -> StackReference {
        StackReference {
            organization: stack.org.clone(),
            routing_project: stack.project.clone(),
            name: stack.stack.clone(),
            version: stack.version,
        }
    }
}

/// `ListDownstreamStackReferencesResponse` (both directions answer in it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ListDownstreamStackReferencesResponse"))]
pub(crate) struct StackReferences {
    /// The stacks, by organization, project and name.
    referenced_stacks: Vec<StackReference>,
}

/// The caller's access to each organization asked about, resolved once.
struct Readable<'a> {
    ctx: &'a Ctx,
    orgs: HashMap<String, Option<OrgAccess>>,
}

impl Readable<'_> {
    async fn may_read(&mut self, stack: &Stack) -> Result<bool> {
        let meta = self.ctx.app.ports.meta.as_ref();
        if !self.orgs.contains_key(&stack.org) {
            let principal = self.ctx.caller.principal()?;
            let access = match OrgAccess::resolve(meta, principal, &stack.org).await {
                Ok(access) => Some(access).filter(|a| a.role.is_some()),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            self.orgs.insert(stack.org.clone(), access);
        }
        let Some(Some(access)) = self.orgs.get_mut(&stack.org) else { return Ok(false) };
        access.may_read(meta, stack).await
    }
}

/// `GET …/upstreamreferences`: the stacks this stack's current deployment references.
pub async fn upstream(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let meta = ctx.app.ports.meta.as_ref();
    let named = match &stack.deployment_key {
        Some(key) => {
            let untyped = deployments::read_untyped(ctx.app.ports.blobs.as_ref(), key).await?;
            references::upstream(&untyped, &stack.org, &stack.project)?
        }
        None => Vec::new(),
    };
    let mut readable = Readable { ctx: &ctx, orgs: HashMap::new() };
    let mut found = Vec::new();
    for name in named {
        let Some(r) = name.stack_ref() else { continue };
        let referenced = match stacks::get(meta, &r).await {
            Ok(referenced) => referenced,
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        if readable.may_read(&referenced).await? {
            found.push(StackReference::of(&referenced));
        }
    }
    Reply::json(&StackReferences { referenced_stacks: found })
}

/// `GET …/downstreamreferences`: the stacks of this stack's organization whose deployment
/// references it (as of the organization's last search indexing run).
pub async fn downstream(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let target = Referenced {
        org: stack.org.clone(),
        project: stack.project.clone(),
        stack: stack.stack.clone(),
    };
    let ids = references::downstream(&ctx.app, &target).await?;
    let mut found = Vec::new();
    if !ids.is_empty() {
        let mut readable = Readable { ctx: &ctx, orgs: HashMap::new() };
        for other in stacks_of(&ctx.app, &stack.org).await? {
            if ids.contains(other.id.as_str()) && readable.may_read(&other).await? {
                found.push(StackReference::of(&other));
            }
        }
    }
    found.sort_by(|a, b| (&a.routing_project, &a.name).cmp(&(&b.routing_project, &b.name)));
    Reply::json(&StackReferences { referenced_stacks: found })
}
