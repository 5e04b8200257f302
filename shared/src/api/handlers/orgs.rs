//! Organization settings, members and stack collaborators.

use serde::{Deserialize, Serialize};

use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::names::UserName;
use crate::service::access::{self, StackPermission};
use crate::service::environments::access::{self as env_access, EnvPermission};
use crate::service::identity::Role;
use crate::service::members;

/// `GET /api/orgs/{org}` response.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "Organization"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrgInfo {
    name: String,
    github_login: String,
    avatar_url: String,
    /// What members may do on stacks they were not given anything on.
    default_stack_permission: &'static str,
    /// What members may do with environments they were not given anything on.
    default_environment_permission: &'static str,
}

/// `PATCH /api/orgs/{org}` body: Pulumi Cloud's `setDefaultStackPermission` (a permission code
/// or name, as its `UpdateOrganizationRequest`), or `defaultStackPermission` (a name), which this
/// server took first and keeps taking. Other settings of Pulumi Cloud are refused, not ignored.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OrgSettings {
    #[serde(default)]
    set_default_stack_permission: Option<serde_json::Value>,
    #[serde(default)]
    default_stack_permission: Option<String>,
    /// `none`, `read`, `open` or `write`.
    #[serde(default)]
    default_environment_permission: Option<String>,
}

/// The user of a member or collaborator entry (Pulumi Cloud's `UserInfo`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserInfo {
    name: String,
    github_login: String,
    avatar_url: String,
}

impl UserInfo {
    pub(crate) fn of(name: &str) -> UserInfo {
        UserInfo { name: name.into(), github_login: name.into(), avatar_url: String::new() }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct MemberEntry {
    role: &'static str,
    user: UserInfo,
    created: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct MembersList {
    members: Vec<MemberEntry>,
}

/// Body of adding or changing a member.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    role: Option<String>,
}

fn parse_role(s: Option<&str>) -> Result<Role> {
    match s {
        None => Ok(Role::Member),
        Some(r) => Role::parse(r).ok_or_else(|| {
            Error::BadRequest(format!("role must be \"admin\" or \"member\", not {r:?}"))
        }),
    }
}

/// A stack permission given as Pulumi's code (`101`) or name (`"read"`).
pub(crate) fn parse_permission(value: &serde_json::Value) -> Result<StackPermission> {
    let parsed = match value {
        serde_json::Value::Number(n) => n.as_i64().and_then(StackPermission::from_code),
        serde_json::Value::String(s) => StackPermission::parse(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        Error::BadRequest(format!(
            "permission must be 0, 101, 102 or 103 (none, read, write, admin), not {value}"
        ))
    })
}

/// `GET /api/orgs/{org}`.
pub async fn get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let default = access::org_default_permission(meta, org.as_str()).await?;
    let env_default = env_access::org_default(meta, org.as_str()).await?;
    Reply::json(&OrgInfo {
        name: org.to_string(),
        github_login: org.to_string(),
        avatar_url: String::new(),
        default_stack_permission: default.as_str(),
        default_environment_permission: env_default.as_str(),
    })
}

/// `PATCH /api/orgs/{org}`: `{"setDefaultStackPermission": 0|101|102|103}` (Pulumi Cloud's) or
/// `{"defaultStackPermission": "none|read|write|admin"}`.
pub async fn update(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let body: OrgSettings = ctx.json()?;
    let meta = ctx.app.ports.meta.as_ref();
    let env_permission = match body.default_environment_permission.as_deref() {
        None => None,
        Some(name) => Some(
            EnvPermission::parse(name).filter(|p| *p != EnvPermission::Admin).ok_or_else(|| {
                Error::BadRequest(
                    "defaultEnvironmentPermission must be none, read, open or write".into(),
                )
            })?,
        ),
    };
    let permission = match (&body.set_default_stack_permission, &body.default_stack_permission) {
        (Some(value), None) => Some(parse_permission(value)?),
        (None, Some(name)) => Some(StackPermission::parse(name).ok_or_else(|| {
            Error::BadRequest("defaultStackPermission must be none, read, write or admin".into())
        })?),
        (None, None) if env_permission.is_some() => None,
        _ => {
            return Err(Error::BadRequest(
                "give one of setDefaultStackPermission and defaultStackPermission, or \
                 defaultEnvironmentPermission"
                    .into(),
            ))
        }
    };
    // Both checked before either is stored: a bad half changes nothing.
    if let Some(p) = permission {
        members::set_default_permission(meta, org.as_str(), p).await?;
    }
    if let Some(p) = env_permission {
        env_access::set_org_default(meta, org.as_str(), p).await?;
    }
    Ok(Reply::no_content())
}

/// `GET /api/orgs/{org}/members`.
pub async fn list_members(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let found = members::list(ctx.app.ports.meta.as_ref(), org.as_str()).await?;
    Reply::json(&MembersList {
        members: found
            .iter()
            .map(|m| MemberEntry {
                role: m.role.as_str(),
                user: UserInfo::of(&m.user),
                created: m.created,
            })
            .collect(),
    })
}

/// `POST /api/orgs/{org}/members/{user}` (add, default role member) and
/// `PATCH /api/orgs/{org}/members/{user}` (change role): `{"role": "admin|member"}`.
pub async fn set_member(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let user = UserName::parse(ctx.param("user")?)?;
    let body: RoleBody = if ctx.body.is_empty() { RoleBody::default() } else { ctx.json()? };
    let role = parse_role(body.role.as_deref())?;
    let meta = ctx.app.ports.meta.as_ref();
    members::set_role(meta, org.as_str(), &user, role, ctx.app.clock.now()).await?;
    Ok(Reply::no_content())
}

/// `DELETE /api/orgs/{org}/members/{user}`.
pub async fn remove_member(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let user = UserName::parse(ctx.param("user")?)?;
    members::remove(ctx.app.ports.meta.as_ref(), org.as_str(), user.as_str()).await?;
    Ok(Reply::no_content())
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct CollaboratorEntry {
    name: String,
    #[serde(rename = "githubLogin")]
    github_login: String,
    permission: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct CollaboratorsList {
    collaborators: Vec<CollaboratorEntry>,
}

/// Body of granting a collaborator: `{"name": "alice", "permission": 102}`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct CollaboratorBody {
    name: String,
    permission: serde_json::Value,
}

/// `GET /api/stacks/{org}/{project}/{stack}/collaborators`.
pub async fn list_collaborators(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let stack = ctx.stack().await?;
    let found = members::collaborators(meta, &stack).await?;
    Reply::json(&CollaboratorsList {
        collaborators: found
            .into_iter()
            .map(|(name, p)| CollaboratorEntry {
                github_login: name.clone(),
                name,
                permission: p.code(),
            })
            .collect(),
    })
}

/// `POST /api/stacks/{org}/{project}/{stack}/collaborators`: grants or changes a member's
/// direct permission (permission 0 removes it).
pub async fn set_collaborator(ctx: Ctx) -> Result<Reply> {
    let body: CollaboratorBody = ctx.json()?;
    let user = UserName::parse(&body.name)?;
    let permission = parse_permission(&body.permission)?;
    let meta = ctx.app.ports.meta.as_ref();
    let stack = ctx.stack().await?;
    members::set_collaborator(meta, &stack, &user, permission).await?;
    Ok(Reply::no_content())
}

/// `DELETE /api/stacks/{org}/{project}/{stack}/collaborators/{user}`.
pub async fn remove_collaborator(ctx: Ctx) -> Result<Reply> {
    let user = UserName::parse(ctx.param("user")?)?;
    let meta = ctx.app.ports.meta.as_ref();
    let stack = ctx.stack().await?;
    members::set_collaborator(meta, &stack, &user, StackPermission::None).await?;
    Ok(Reply::no_content())
}
