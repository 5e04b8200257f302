//! Policy pack and policy group routes (Pulumi Cloud's `/api/orgs/{org}/policypacks` and
//! `/policygroups`, as `pulumi policy publish/enable/disable/ls/rm/group ls` call them), and the
//! packs a stack requires.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{path_org, path_stack};
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::access::OrgAccess;
use crate::service::policy_packs::groups::{
    self, Change, EnabledPack, RequiredPolicy, StackMember,
};
use crate::service::policy_packs::{self as packs, CreatePolicyPack, PackName};

fn path_pack(ctx: &Ctx) -> Result<PackName> {
    PackName::parse(ctx.param("pack")?)
}

fn path_tag(ctx: &Ctx) -> Result<String> {
    packs::parse_tag(ctx.param("tag")?)
}

/// `CreatePolicyPackResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PublishStarted {
    version: i64,
    #[serde(rename = "uploadURI")]
    upload_uri: String,
    /// Headers the upload must carry (none: the URL alone authorises it).
    required_headers: std::collections::BTreeMap<String, String>,
}

fn started(published: packs::Published) -> Result<Reply> {
    Reply::json(&PublishStarted {
        version: published.version,
        upload_uri: published.upload_url,
        required_headers: Default::default(),
    })
}

/// `POST /api/orgs/{org}/policypacks`: starts publishing a version; the client PUTs the pack's
/// archive to `uploadURI`, then calls `…/versions/{tag}/complete`.
pub async fn publish(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let req: CreatePolicyPack = ctx.json()?;
    started(packs::publish(&ctx.app, org.as_str(), req).await?)
}

/// `POST /api/orgs/{org}/policypacks/{pack}/versions/{tag}/complete`: the archive is uploaded;
/// it is checked, stored by content and the version becomes usable. Idempotent.
pub async fn complete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    packs::complete(&ctx.app, org.as_str(), &path_pack(&ctx)?, &path_tag(&ctx)?).await?;
    Ok(Reply::no_content())
}

/// A pack in a list (`AppPolicyPackWithVersions`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PackWithVersions {
    name: String,
    display_name: String,
    versions: Vec<i64>,
    version_tags: Vec<String>,
}

/// `AppListPolicyPacksResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PackList {
    policy_packs: Vec<PackWithVersions>,
}

/// `GET /api/orgs/{org}/policypacks`: every pack with its published versions.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let found = packs::list(ctx.app.ports.meta.as_ref(), org.as_str()).await?;
    Reply::json(&PackList {
        policy_packs: found
            .into_iter()
            .map(|p| PackWithVersions {
                versions: p.versions.iter().map(|v| v.version).collect(),
                version_tags: p.versions.iter().map(|v| v.tag.clone()).collect(),
                name: p.name,
                display_name: p.display_name,
            })
            .collect(),
    })
}

/// `AppGetPolicyPackResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PackVersion {
    name: String,
    display_name: String,
    version: i64,
    version_tag: String,
    policies: Vec<Json>,
    /// Whether a policy group enables this version.
    applied: bool,
}

/// `GET /api/orgs/{org}/policypacks/{pack}/versions/{tag}`.
pub async fn version_get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let v = complete_version(&ctx).await?;
    let applied = groups::list(meta, org.as_str())
        .await?
        .iter()
        .any(|g| g.packs.iter().any(|p| p.name == v.name && p.version == v.version));
    Reply::json(&PackVersion {
        name: v.name,
        display_name: v.display_name,
        version: v.version,
        version_tag: v.tag,
        policies: v.policies,
        applied,
    })
}

/// The version of the path, if its publish completed (404 otherwise, as if absent).
async fn complete_version(ctx: &Ctx) -> Result<packs::Version> {
    let org = path_org(ctx)?;
    let (pack, tag) = (path_pack(ctx)?, path_tag(ctx)?);
    let v = packs::get_version(ctx.app.ports.meta.as_ref(), org.as_str(), &pack, &tag).await?;
    if !v.complete {
        return Err(Error::NotFound(format!(
            "policy pack {org}/{} version {tag} is not published yet",
            pack.as_str()
        )));
    }
    Ok(v)
}

/// `GetPolicyPackConfigSchemaResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct ConfigSchema {
    config_schema: serde_json::Map<String, Json>,
}

/// `GET /api/orgs/{org}/policypacks/{pack}/versions/{tag}/schema`: each policy's config schema.
pub async fn schema(ctx: Ctx) -> Result<Reply> {
    let v = complete_version(&ctx).await?;
    Reply::json(&ConfigSchema { config_schema: v.config_schema() })
}

/// `DELETE /api/orgs/{org}/policypacks/{pack}`: every version (400 while a group enables one).
pub async fn delete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    packs::remove(&ctx.app, org.as_str(), &path_pack(&ctx)?, None).await?;
    Ok(Reply::no_content())
}

/// `DELETE /api/orgs/{org}/policypacks/{pack}/versions/{tag}`.
pub async fn version_delete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let tag = path_tag(&ctx)?;
    packs::remove(&ctx.app, org.as_str(), &path_pack(&ctx)?, Some(&tag)).await?;
    Ok(Reply::no_content())
}

/// A group in a list (`AppPolicyGroupSummary`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct GroupSummary {
    name: String,
    is_org_default: bool,
    num_stacks: usize,
    num_accounts: usize,
    entity_type: &'static str,
    mode: &'static str,
    num_enabled_policy_packs: usize,
}

/// `AppListPolicyGroupsResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct GroupList {
    policy_groups: Vec<GroupSummary>,
}

/// Stack groups only; every violation of a mandatory policy blocks the update.
const ENTITY_TYPE: &str = "stacks";
const MODE: &str = "preventative";

/// `GET /api/orgs/{org}/policygroups`.
pub async fn groups_list(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let mut out = Vec::new();
    for g in groups::list(meta, org.as_str()).await? {
        out.push(GroupSummary {
            num_stacks: groups::members(meta, org.as_str(), &g).await?.len(),
            num_accounts: 0,
            entity_type: ENTITY_TYPE,
            mode: MODE,
            num_enabled_policy_packs: g.packs.len(),
            is_org_default: g.is_default,
            name: g.name,
        });
    }
    Reply::json(&GroupList { policy_groups: out })
}

/// `PolicyGroup`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct GroupDetail {
    name: String,
    is_org_default: bool,
    entity_type: &'static str,
    mode: &'static str,
    stacks: Vec<StackMember>,
    applied_policy_packs: Vec<EnabledPack>,
    accounts: Vec<String>,
}

async fn detail(ctx: &Ctx, g: groups::Group) -> Result<Reply> {
    let org = path_org(ctx)?;
    let stacks = groups::members(ctx.app.ports.meta.as_ref(), org.as_str(), &g).await?;
    Reply::json(&GroupDetail {
        is_org_default: g.is_default,
        entity_type: ENTITY_TYPE,
        mode: MODE,
        stacks,
        applied_policy_packs: g.packs,
        accounts: vec![],
        name: g.name,
    })
}

/// `GET /api/orgs/{org}/policygroups/{group}`.
pub async fn group_get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let g = groups::get(ctx.app.ports.meta.as_ref(), org.as_str(), ctx.param("group")?).await?;
    detail(&ctx, g).await
}

/// `NewPolicyGroupRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct NewGroup {
    name: String,
    #[serde(default)]
    entity_type: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    /// Match rules, agent pools: refused when set (see `groups::Change::check`).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schemars(skip))]
    unsupported: std::collections::BTreeMap<String, Json>,
}

/// `POST /api/orgs/{org}/policygroups`: a new, empty group of stacks.
pub async fn group_create(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let req: NewGroup = ctx.json()?;
    if let Some((name, _)) = req.unsupported.iter().find(|(_, v)| !v.is_null()) {
        return Err(Error::BadRequest(format!(
            "{name} is not supported: policy groups here name their stacks one by one"
        )));
    }
    if req.entity_type.as_deref().is_some_and(|t| t != ENTITY_TYPE) {
        return Err(Error::BadRequest("only policy groups of stacks are supported".into()));
    }
    if req.mode.as_deref().is_some_and(|m| m != MODE) {
        return Err(Error::BadRequest("only preventative policy groups are supported".into()));
    }
    let g = groups::create(ctx.app.ports.meta.as_ref(), org.as_str(), &req.name).await?;
    detail(&ctx, g).await
}

/// `PATCH /api/orgs/{org}/policygroups/{group}`: one change (`UpdatePolicyGroupRequest`).
pub async fn group_update(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let change: Change = ctx.json()?;
    groups::change(&ctx.app, org.as_str(), ctx.param("group")?, &[change]).await?;
    Ok(Reply::no_content())
}

/// `POST /api/orgs/{org}/policygroups/{group}/batch`: several changes, all or none.
pub async fn group_batch(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let changes: Vec<Change> = ctx.json()?;
    if changes.len() > 100 {
        return Err(Error::BadRequest("at most 100 changes per batch".into()));
    }
    groups::change(&ctx.app, org.as_str(), ctx.param("group")?, &changes).await?;
    Ok(Reply::no_content())
}

/// `DELETE /api/orgs/{org}/policygroups/{group}` (not the default group).
pub async fn group_delete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    groups::delete(ctx.app.ports.meta.as_ref(), org.as_str(), ctx.param("group")?).await?;
    Ok(Reply::no_content())
}

/// `GetStackPolicyPacksResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct StackPolicyPacks {
    required_policies: Vec<RequiredPolicy>,
}

/// `GET /api/stacks/{org}/{project}/{stack}/policypacks`: the packs the stack's updates run,
/// with short-lived download URLs (`pulumi policy install`; updates get the same list when
/// they are created).
pub async fn stack_policy_packs(ctx: Ctx) -> Result<Reply> {
    let r = path_stack(&ctx)?;
    crate::service::stacks::get(ctx.app.ports.meta.as_ref(), &r).await?;
    let required =
        groups::required(&ctx.app, r.org.as_str(), r.project.as_str(), r.stack.as_str()).await?;
    Reply::json(&StackPolicyPacks { required_policies: required })
}

/// A pack version as the registry lists it (`RegistryPolicyPack`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RegistryPolicyPack {
    /// `private/<publisher>/<name>@<version tag>`.
    id: String,
    source: &'static str,
    publisher: String,
    name: String,
    /// The version tag.
    version: String,
    display_name: String,
    /// What the caller may do with it: members read (`view-only`), admins manage (`full`).
    access_level: &'static str,
    /// The enforcement levels its policies use, each once.
    enforcement_levels: Vec<String>,
}

fn registry_entry(v: &packs::Version, admin: bool) -> RegistryPolicyPack {
    let mut levels: Vec<String> = v
        .policies
        .iter()
        .filter_map(|p| p.get("enforcementLevel").and_then(Json::as_str).map(str::to_string))
        .collect();
    levels.sort();
    levels.dedup();
    RegistryPolicyPack {
        id: format!("{REGISTRY_SOURCE}/{}/{}@{}", v.org, v.name, v.tag),
        source: REGISTRY_SOURCE,
        publisher: v.org.clone(),
        name: v.name.clone(),
        version: v.tag.clone(),
        display_name: v.display_name.clone(),
        access_level: if admin { "full" } else { "view-only" },
        enforcement_levels: levels,
    }
}

/// The registry's one source: the organizations' own packs.
const REGISTRY_SOURCE: &str = crate::service::templates::SOURCE;

/// Whether the caller administers `org` (their access level to its packs).
async fn administers(ctx: &Ctx, org: &str) -> Result<bool> {
    let meta = ctx.app.ports.meta.as_ref();
    let access = OrgAccess::resolve(meta, ctx.caller.principal()?, org).await?;
    Ok(access.require_admin().is_ok())
}

/// `ListPolicyPacksResponse` (the registry's).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RegistryPolicyPackList {
    policy_packs: Vec<RegistryPolicyPack>,
}

/// `GET /api/registry/policypacks?orgLogin=`: the newest version of each pack of the caller's
/// organizations (published through `/api/orgs/{org}/policypacks`), in one page.
pub async fn registry_list(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let orgs = super::caller_orgs(&ctx).await?;
    let mut out = Vec::new();
    for org in &orgs {
        let admin = administers(&ctx, org).await?;
        for pack in packs::list(meta, org).await? {
            if let Some(v) = pack.versions.last() {
                out.push(registry_entry(v, admin));
            }
        }
    }
    Reply::json(&RegistryPolicyPackList { policy_packs: out })
}

/// `GET /api/registry/policypacks/{source}/{org}/{name}/versions`: every published version.
pub async fn registry_versions(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    crate::service::templates::check_source(ctx.param("source")?)?;
    let name = PackName::parse(ctx.param("name")?)?;
    let meta = ctx.app.ports.meta.as_ref();
    let admin = administers(&ctx, org.as_str()).await?;
    let found: Vec<RegistryPolicyPack> = packs::versions(meta, org.as_str(), &name)
        .await?
        .iter()
        .filter(|v| v.complete)
        .map(|v| registry_entry(v, admin))
        .collect();
    if found.is_empty() {
        return Err(Error::NotFound(format!("policy pack {org}/{} not found", name.as_str())));
    }
    Reply::json(&RegistryPolicyPackList { policy_packs: found })
}

/// `GetRegistryPolicyPackVersionResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RegistryPolicyPackVersion {
    policy_pack: RegistryPolicyPack,
    policies: Vec<Json>,
}

async fn registry_version(ctx: &Ctx, org: &str, name: &str, tag: Option<&str>) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let name = PackName::parse(name)?;
    let v = match tag.filter(|t| !t.is_empty() && *t != "latest") {
        Some(tag) => packs::get_version(meta, org, &name, &packs::parse_tag(tag)?).await?,
        None => packs::latest(meta, org, &name).await?,
    };
    if !v.complete {
        return Err(Error::NotFound(format!("policy pack {org}/{} is not published", v.name)));
    }
    let admin = administers(ctx, org).await?;
    Reply::json(&RegistryPolicyPackVersion {
        policy_pack: registry_entry(&v, admin),
        policies: v.policies,
    })
}

/// `GET /api/registry/policypacks/{source}/{org}/{name}/versions/{tag}` (or `latest`).
pub async fn registry_version_get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    crate::service::templates::check_source(ctx.param("source")?)?;
    registry_version(&ctx, org.as_str(), ctx.param("name")?, Some(ctx.param("tag")?)).await
}

/// `GET /api/orgs/{org}/registry/policypacks/{pack}?tag=`: a version (the newest without a tag).
pub async fn org_registry_get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    registry_version(&ctx, org.as_str(), ctx.param("pack")?, ctx.query("tag")).await
}

/// `POST /api/registry/policypacks/{source}/{org}/{name}/versions`: starts publishing a version
/// as `POST /api/orgs/{org}/policypacks` does (the body's `name`, if given, must be the path's).
pub async fn registry_publish(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    crate::service::templates::check_source(ctx.param("source")?)?;
    let name = ctx.param("name")?;
    let mut body: Json = ctx.json()?;
    let Some(fields) = body.as_object_mut() else {
        return Err(Error::BadRequest("the body must be a JSON object".into()));
    };
    match fields.get("name") {
        None => {
            fields.insert("name".into(), Json::String(name.to_string()));
        }
        Some(given) if given.as_str() == Some(name) => {}
        Some(given) => {
            return Err(Error::BadRequest(format!(
                "the body names policy pack {given}, the path {name:?}"
            )))
        }
    }
    let req: CreatePolicyPack = serde_json::from_value(body)
        .map_err(|e| Error::BadRequest(format!("invalid policy pack: {e}")))?;
    started(packs::publish(&ctx.app, org.as_str(), req).await?)
}

/// `POST /api/registry/policypacks/{source}/{org}/{name}/versions/{tag}/complete`.
pub async fn registry_complete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    crate::service::templates::check_source(ctx.param("source")?)?;
    let (name, tag) = (PackName::parse(ctx.param("name")?)?, packs::parse_tag(ctx.param("tag")?)?);
    packs::complete(&ctx.app, org.as_str(), &name, &tag).await?;
    Ok(Reply::no_content())
}

/// `DELETE /api/registry/policypacks/{source}/{org}/{name}`: every version (400 while a group
/// enables one).
pub async fn registry_delete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    crate::service::templates::check_source(ctx.param("source")?)?;
    packs::remove(&ctx.app, org.as_str(), &PackName::parse(ctx.param("name")?)?, None).await?;
    Ok(Reply::no_content())
}

/// `DELETE /api/registry/policypacks/{source}/{org}/{name}/versions/{tag}` (400 while a group
/// enables it, as `DELETE …/policypacks/{pack}/versions/{tag}`).
pub async fn registry_version_delete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    crate::service::templates::check_source(ctx.param("source")?)?;
    let tag = packs::parse_tag(ctx.param("tag")?)?;
    packs::remove(&ctx.app, org.as_str(), &PackName::parse(ctx.param("name")?)?, Some(&tag))
        .await?;
    Ok(Reply::no_content())
}
