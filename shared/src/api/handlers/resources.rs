//! A stack's resources, as of its latest or any earlier version (Pulumi Cloud's
//! `GET …/resources/…` routes), read from the deployment stored for that version.

use serde::Serialize;

use super::path_version;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::resources::{self, Resource};
use crate::service::{deployments, history};

/// `GetStackResourcesResponse`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "GetStackResourcesResponse"))]
pub(crate) struct StackResources<'a> {
    /// The resources, in deployment order.
    resources: Vec<ResourceInfo<'a>>,
    /// Where the service runs (the AWS region; empty on the emulator).
    region: String,
    /// The stack version they are of (0: no update yet).
    version: i64,
}

/// `ResourceInfo`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ResourceInfo"))]
pub(crate) struct ResourceInfo<'a> {
    /// The resource.
    resource: Resource<'a>,
}

/// `GetStackResourceResponse`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "GetStackResourceResponse"))]
pub(crate) struct StackResource<'a> {
    /// The resource.
    resource: ResourceInfo<'a>,
    /// Where the service runs (the AWS region; empty on the emulator).
    region: String,
    /// The stack version it is of.
    version: i64,
}

/// `GetStackResourceCountResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "GetStackResourceCountResponse"))]
pub(crate) struct ResourceCount {
    /// Resources in the stack's latest version.
    resource_count: i64,
    /// That version.
    version: i64,
}

fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_default()
}

/// The deployment of the latest version, or of `…/{version}`, with that version.
async fn deployment(ctx: &Ctx, version: Option<i64>) -> Result<(serde_json::Value, i64)> {
    let stack = ctx.stack().await?;
    let (key, version) = match version {
        None => (stack.deployment_key, stack.version),
        Some(v) => {
            (history::get(ctx.app.ports.meta.as_ref(), &stack.id, v).await?.deployment_key, v)
        }
    };
    let untyped = match key {
        Some(key) => deployments::read_untyped(ctx.app.ports.blobs.as_ref(), &key).await?,
        None => serde_json::from_str(deployments::EMPTY)
            .map_err(|e| Error::caused("the empty deployment", e))?,
    };
    Ok((untyped, version))
}

async fn list_of(ctx: Ctx, version: Option<i64>) -> Result<Reply> {
    let (untyped, version) = deployment(&ctx, version).await?;
    let resources =
        resources::list(&untyped)?.into_iter().map(|resource| ResourceInfo { resource });
    Reply::json(&StackResources { resources: resources.collect(), region: region(), version })
}

async fn one_of(ctx: Ctx, version: Option<i64>) -> Result<Reply> {
    let urn = ctx.param("urn")?.to_string();
    let (untyped, version) = deployment(&ctx, version).await?;
    let resource = resources::find(&untyped, &urn)?
        .ok_or_else(|| Error::NotFound(format!("resource {urn} not found at version {version}")))?;
    Reply::json(&StackResource { resource: ResourceInfo { resource }, region: region(), version })
}

/// `GET …/resources/latest`: the resources of the stack's latest version.
pub async fn latest(ctx: Ctx) -> Result<Reply> {
    list_of(ctx, None).await
}

/// `GET …/resources/{version}`: the resources of one version.
pub async fn at_version(ctx: Ctx) -> Result<Reply> {
    let version = path_version(&ctx)?;
    list_of(ctx, Some(version)).await
}

/// `GET …/resources/latest/{urn}`: one resource of the latest version (URN percent-encoded).
pub async fn one_latest(ctx: Ctx) -> Result<Reply> {
    one_of(ctx, None).await
}

/// `GET …/resources/{version}/{urn}`: one resource of one version.
pub async fn one_at_version(ctx: Ctx) -> Result<Reply> {
    let version = path_version(&ctx)?;
    one_of(ctx, Some(version)).await
}

/// `GET …/resources/count`: how many resources the latest version has (no deployment read:
/// the stack item keeps the count).
pub async fn count(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    Reply::json(&ResourceCount {
        resource_count: stack.resource_count.unwrap_or(0),
        version: stack.version,
    })
}
