//! Teams: `/api/orgs/{org}/teams…` and a stack's teams.

use serde::{Deserialize, Serialize};

use super::orgs::{parse_permission, UserInfo};
use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::names::{ProjectName, StackName, StackRef, TeamName, UserName};
use crate::service::access::{self, StackPermission};
use crate::service::environments::access::{self as env_access, EnvPermission};
use crate::service::environments::{self, EnvRef};
use crate::service::{stacks, teams};

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct TeamSummary {
    kind: &'static str,
    name: String,
    display_name: String,
    description: String,
}

impl TeamSummary {
    fn of(t: teams::Team) -> TeamSummary {
        TeamSummary {
            kind: "pulumi",
            name: t.name,
            display_name: t.display_name,
            description: t.description,
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TeamsList {
    teams: Vec<TeamSummary>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct TeamStack {
    project_name: String,
    stack_name: String,
    permission: i64,
}

/// A team's permission on one environment.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct TeamEnvironment {
    project_name: String,
    env_name: String,
    /// `read`, `open`, `write` or `admin`.
    permission: &'static str,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct TeamDetail {
    #[serde(flatten)]
    summary: TeamSummary,
    members: Vec<UserInfo>,
    stacks: Vec<TeamStack>,
    environments: Vec<TeamEnvironment>,
}

/// `POST /api/orgs/{org}/teams/pulumi` body.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateTeam {
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
    /// Pulumi Cloud sends these; they must agree with the path when present.
    organization: Option<String>,
    team_type: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct StackKey {
    project_name: String,
    stack_name: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddStackPermission {
    project_name: String,
    stack_name: String,
    permission: serde_json::Value,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EnvKey {
    project_name: String,
    env_name: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EnvPermissionChange {
    project_name: String,
    env_name: String,
    /// `read`, `open`, `write` or `admin` (`none` removes the grant).
    permission: String,
    /// Pulumi Cloud's cap on a team's open sessions; not enforced here, so refused.
    max_open_duration: Option<String>,
}

/// `PATCH /api/orgs/{org}/teams/{team}` body: one change per call, as Pulumi Cloud's API.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct UpdateTeam {
    member_action: Option<String>,
    member: Option<String>,
    add_stack_permission: Option<AddStackPermission>,
    remove_stack: Option<StackKey>,
    add_environment_permission: Option<EnvPermissionChange>,
    edit_environment_permission: Option<EnvPermissionChange>,
    remove_environment: Option<EnvKey>,
    new_display_name: Option<String>,
    new_description: Option<String>,
}

fn path_team(ctx: &Ctx) -> Result<TeamName> {
    TeamName::parse(ctx.param("team")?)
}

fn stack_ref(org: &crate::names::OrgName, project: &str, stack: &str) -> Result<StackRef> {
    Ok(StackRef {
        org: org.clone(),
        project: ProjectName::parse(project)?,
        stack: StackName::parse(stack)?,
    })
}

/// `GET /api/orgs/{org}/teams`.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let found = teams::list(ctx.app.ports.meta.as_ref(), org.as_str()).await?;
    Reply::json(&TeamsList { teams: found.into_iter().map(TeamSummary::of).collect() })
}

/// `POST /api/orgs/{org}/teams/pulumi`.
pub async fn create(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let body: CreateTeam = ctx.json()?;
    if body.organization.as_deref().is_some_and(|o| o != org.as_str()) {
        return Err(Error::BadRequest("organization does not match the path".into()));
    }
    if body.team_type.as_deref().is_some_and(|t| t != "pulumi") {
        return Err(Error::BadRequest("only teams of type \"pulumi\" can be created".into()));
    }
    let name = TeamName::parse(&body.name)?;
    let meta = ctx.app.ports.meta.as_ref();
    let now = ctx.app.clock.now();
    let team = teams::create(meta, org.as_str(), &name, &body.display_name, &body.description, now)
        .await?;
    // Pulumi Cloud answers with the whole `Team`: a new one has no members or stacks yet.
    Reply::json(&TeamDetail {
        summary: TeamSummary::of(team),
        members: vec![],
        stacks: vec![],
        environments: vec![],
    })
}

/// `GET /api/orgs/{org}/teams/{team}`: the team with its members and stacks.
pub async fn get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let name = path_team(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let team = teams::get(meta, org.as_str(), name.as_str()).await?;
    let members = teams::members(meta, org.as_str(), name.as_str()).await?;
    let grants = teams::stack_grants(meta, org.as_str(), name.as_str()).await?;
    let env_grants = env_access::team_grants(meta, org.as_str(), name.as_str()).await?;
    Reply::json(&TeamDetail {
        summary: TeamSummary::of(team),
        members: members.iter().map(|m| UserInfo::of(m)).collect(),
        stacks: grants
            .into_iter()
            .map(|g| TeamStack {
                project_name: g.project,
                stack_name: g.stack,
                permission: g.permission.code(),
            })
            .collect(),
        environments: env_grants
            .into_iter()
            .map(|g| TeamEnvironment {
                project_name: g.project,
                env_name: g.name,
                permission: g.permission.as_str(),
            })
            .collect(),
    })
}

/// `PATCH /api/orgs/{org}/teams/{team}`: add/remove a member, grant/revoke a stack, rename.
pub async fn update(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let team = path_team(&ctx)?;
    let body: UpdateTeam = ctx.json()?;
    let meta = ctx.app.ports.meta.as_ref();
    let (org_s, team_s) = (org.as_str(), team.as_str());
    teams::get(meta, org_s, team_s).await?;
    if let Some(action) = body.member_action.as_deref() {
        let member = body
            .member
            .as_deref()
            .ok_or_else(|| Error::BadRequest("memberAction needs member".into()))?;
        let user = UserName::parse(member)?;
        match action {
            "add" => teams::add_member(meta, org_s, team_s, &user, ctx.app.clock.now()).await?,
            "remove" => teams::remove_member(meta, org_s, team_s, user.as_str()).await?,
            other => {
                return Err(Error::BadRequest(format!(
                    "memberAction must be \"add\" or \"remove\", not {other:?}"
                )))
            }
        }
    } else if let Some(add) = &body.add_stack_permission {
        let permission = parse_permission(&add.permission)?;
        let stack =
            stacks::get(meta, &stack_ref(&org, &add.project_name, &add.stack_name)?).await?;
        teams::set_stack_permission(meta, org_s, team_s, &stack, permission).await?;
    } else if let Some(remove) = &body.remove_stack {
        let stack =
            stacks::get(meta, &stack_ref(&org, &remove.project_name, &remove.stack_name)?).await?;
        teams::set_stack_permission(meta, org_s, team_s, &stack, StackPermission::None).await?;
    } else if let Some(change) =
        body.add_environment_permission.as_ref().or(body.edit_environment_permission.as_ref())
    {
        if change.max_open_duration.is_some() {
            return Err(Error::BadRequest("maxOpenDuration is not supported here".into()));
        }
        let permission = EnvPermission::parse(&change.permission).ok_or_else(|| {
            Error::BadRequest(format!(
                "permission must be one of read, open, write, admin or none, not {:?}",
                change.permission
            ))
        })?;
        let at = EnvRef::parse(org_s, &change.project_name, &change.env_name)?;
        let env = environments::get(meta, &at).await?;
        env_access::set_team_permission(meta, team_s, &env, permission).await?;
    } else if let Some(remove) = &body.remove_environment {
        let env =
            environments::get(meta, &EnvRef::parse(org_s, &remove.project_name, &remove.env_name)?)
                .await?;
        env_access::set_team_permission(meta, team_s, &env, EnvPermission::None).await?;
    } else if body.new_display_name.is_some() || body.new_description.is_some() {
        teams::describe(
            meta,
            org_s,
            team_s,
            body.new_display_name.as_deref(),
            body.new_description.as_deref(),
        )
        .await?;
    } else {
        return Err(Error::BadRequest(
            "give one of memberAction, addStackPermission, removeStack, \
             addEnvironmentPermission, editEnvironmentPermission, removeEnvironment, \
             newDisplayName, newDescription"
                .into(),
        ));
    }
    Ok(Reply::no_content())
}

/// `DELETE /api/orgs/{org}/teams/{team}`.
pub async fn delete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let team = path_team(&ctx)?;
    teams::delete(ctx.app.ports.meta.as_ref(), org.as_str(), team.as_str()).await?;
    Ok(Reply::no_content())
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct StackTeam {
    name: String,
    permission: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct StackTeams {
    teams: Vec<StackTeam>,
}

/// `GET /api/stacks/{org}/{project}/{stack}/teams`: the teams with a permission on the stack.
pub async fn stack_teams(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let stack = ctx.stack().await?;
    let found = access::stack_team_permissions(meta, &stack.id).await?;
    Reply::json(&StackTeams {
        teams: found
            .into_iter()
            .map(|(name, p)| StackTeam { name, permission: p.code() })
            .collect(),
    })
}
