//! Who may do what with an environment, as in Pulumi ESC: `read` (the definition, secrets
//! sealed), `open` (secrets in the clear, providers run), `write` (change it, its tags and
//! revisions), `admin` (delete it, its protection, its tags' deletion).
//!
//! A principal's permission is the highest of: organization admin or organization token
//! (admin), the environment's creator (admin), the organization's default for members
//! (`write` unless an admin lowered it), and the grants of the principal's teams. A team token
//! has exactly its team's grant.
//!
//! A team's grant is stored twice, like a stack grant: under the environment
//! (`ENV#<id>` / `TEAMPERM#<team>`, what authorisation reads in one query) and under the
//! organization (`ORG#<org>` / `TEAMENV#<team>#<id>`, with the names, for the team's page).

use serde::{Deserialize, Serialize};

use super::Environment;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Value};
use crate::service::access::{query_all, user_teams, OrgAccess};
use crate::service::identity::{Role, Subject};
use crate::service::item_keys;
use crate::service::teams::{write_grant, Grant};

/// Permission on an environment, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EnvPermission {
    /// Invisible (404).
    None,
    /// The definition with its secrets sealed, revisions, tags, checks.
    Read,
    /// Read, plus decrypt and open.
    Open,
    /// Open, plus change the definition, tags and revision tags, retract.
    Write,
    /// Write, plus delete it, its tags and its deletion protection.
    Admin,
}

impl EnvPermission {
    /// Lower-case name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvPermission::None => "none",
            EnvPermission::Read => "read",
            EnvPermission::Open => "open",
            EnvPermission::Write => "write",
            EnvPermission::Admin => "admin",
        }
    }

    /// From the lower-case name.
    pub fn parse(s: &str) -> Option<EnvPermission> {
        Some(match s {
            "none" => EnvPermission::None,
            "read" => EnvPermission::Read,
            "open" => EnvPermission::Open,
            "write" => EnvPermission::Write,
            "admin" => EnvPermission::Admin,
            _ => return None,
        })
    }
}

/// Members' permission on every environment when the organization has not set one (Pulumi
/// Cloud's default).
pub const DEFAULT_MEMBER_PERMISSION: EnvPermission = EnvPermission::Write;

const TEAM_PREFIX: &str = "TEAMPERM#";

fn env_pk(env_id: &str) -> String {
    item_keys::env_id_pk(env_id)
}

fn team_env_prefix(team: &str) -> String {
    format!("TEAMENV#{team}#")
}

/// The organization's default environment permission for members.
pub async fn org_default(meta: &dyn MetadataStore, org: &str) -> Result<EnvPermission> {
    Ok(meta
        .get(&item_keys::org_pk(org), item_keys::ORG_SK)
        .await?
        .and_then(|item| item.s("default_env_permission").and_then(EnvPermission::parse))
        .unwrap_or(DEFAULT_MEMBER_PERMISSION))
}

/// Sets the members' default (`none`, `read`, `open` or `write`; admin is per environment).
pub async fn set_org_default(
    meta: &dyn MetadataStore,
    org: &str,
    permission: EnvPermission,
) -> Result<()> {
    if permission == EnvPermission::Admin {
        return Err(Error::BadRequest(
            "the default environment permission is one of none, read, open and write".into(),
        ));
    }
    let change = crate::ports::Update::new(item_keys::org_pk(org), item_keys::ORG_SK)
        .set("default_env_permission", Value::S(permission.as_str().to_string()))
        .when(Condition::Exists);
    match meta.update(change).await {
        Ok(_) => Ok(()),
        Err(MetaError::ConditionFailed) => {
            Err(Error::NotFound(format!("organization '{org}' does not exist")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The caller's permission on `env` (of `access`'s organization), reading no further once it
/// is known to be at least `enough`.
pub async fn permission(
    meta: &dyn MetadataStore,
    access: &OrgAccess,
    env: &Environment,
    enough: EnvPermission,
) -> Result<EnvPermission> {
    let Some(role) = access.role else { return Ok(EnvPermission::None) };
    let user = match access.subject() {
        Subject::Org { .. } => return Ok(EnvPermission::Admin),
        Subject::Team { team, .. } => return team_grant(meta, &env.id, team).await,
        Subject::User(user) => user,
    };
    if role == Role::Admin || env.owner == *user {
        return Ok(EnvPermission::Admin);
    }
    let mut best = org_default(meta, &access.org).await?;
    if best >= enough {
        return Ok(best);
    }
    let teams = user_teams(meta, user, &access.org).await?;
    if teams.is_empty() {
        return Ok(best);
    }
    let grants = query_all(meta, Query::prefix(env_pk(&env.id), TEAM_PREFIX, 100)).await?;
    for item in grants {
        if teams.iter().any(|t| item.sk.strip_prefix(TEAM_PREFIX) == Some(t.as_str())) {
            best = best.max(item_permission(&item));
        }
    }
    Ok(best)
}

/// 404 when the caller may not even read `env`, 403 when they may read it but hold less than
/// `required`.
pub async fn require(
    meta: &dyn MetadataStore,
    access: &OrgAccess,
    env: &Environment,
    required: EnvPermission,
) -> Result<()> {
    let held = permission(meta, access, env, required).await?;
    if held == EnvPermission::None {
        return Err(super::not_found(&env.at));
    }
    if held < required {
        return Err(Error::Forbidden(format!(
            "this needs {} permission on environment '{}'; you have {}",
            required.as_str(),
            env.at.qualified(),
            held.as_str()
        )));
    }
    Ok(())
}

fn item_permission(item: &Item) -> EnvPermission {
    item.s("permission").and_then(EnvPermission::parse).unwrap_or(EnvPermission::None)
}

async fn team_grant(meta: &dyn MetadataStore, env_id: &str, team: &str) -> Result<EnvPermission> {
    let sk = format!("{TEAM_PREFIX}{team}");
    Ok(meta
        .get(&env_pk(env_id), &sk)
        .await?
        .map(|i| item_permission(&i))
        .unwrap_or(EnvPermission::None))
}

/// A team's permission on one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvGrant {
    pub project: String,
    pub name: String,
    pub permission: EnvPermission,
}

/// Gives `team` `permission` on `env` (replacing a previous grant); `None` removes it. 404
/// when the team does not exist.
pub async fn set_team_permission(
    meta: &dyn MetadataStore,
    team: &str,
    env: &Environment,
    permission: EnvPermission,
) -> Result<()> {
    let grant = (permission != EnvPermission::None).then(|| {
        Grant::new(Value::S(permission.as_str().to_string()))
            .with("project", Value::S(env.at.project.clone()))
            .with("name", Value::S(env.at.name.clone()))
    });
    let under_env = (env_pk(&env.id), format!("{TEAM_PREFIX}{team}"));
    let under_org = format!("{}{}", team_env_prefix(team), env.id);
    write_grant(meta, &env.at.org, team, under_env, under_org, grant).await
}

/// The team's environment grants, in id order.
pub async fn team_grants(meta: &dyn MetadataStore, org: &str, team: &str) -> Result<Vec<EnvGrant>> {
    let q = Query::prefix(item_keys::org_pk(org), team_env_prefix(team), 100);
    Ok(query_all(meta, q)
        .await?
        .iter()
        .map(|i| EnvGrant {
            project: i.s("project").unwrap_or_default().to_string(),
            name: i.s("name").unwrap_or_default().to_string(),
            permission: item_permission(i),
        })
        .collect())
}

/// Removes every grant on a deleted environment (both halves of each).
pub async fn forget(meta: &dyn MetadataStore, env: &Environment) -> Result<()> {
    for item in query_all(meta, Query::prefix(env_pk(&env.id), TEAM_PREFIX, 100)).await? {
        let team = item.sk.trim_start_matches(TEAM_PREFIX).to_string();
        set_team_permission(meta, &team, env, EnvPermission::None).await?;
    }
    Ok(())
}

/// Removes a deleted team's environment grants (both halves of each).
pub async fn forget_team(meta: &dyn MetadataStore, org: &str, team: &str) -> Result<()> {
    let prefix = team_env_prefix(team);
    for item in query_all(meta, Query::prefix(item_keys::org_pk(org), prefix.clone(), 100)).await? {
        let env_id = item.sk.trim_start_matches(&prefix).to_string();
        meta.transact(vec![
            TransactOp::Delete {
                pk: env_pk(&env_id),
                sk: format!("{TEAM_PREFIX}{team}"),
                condition: None,
            },
            TransactOp::Delete { pk: item.pk.clone(), sk: item.sk.clone(), condition: None },
        ])
        .await?;
    }
    Ok(())
}

/// What a caller may see of an organization's environments, resolved once per listing.
pub struct Visibility {
    /// Reads every environment (admin, organization token, or members' default of read or
    /// more).
    all: bool,
    /// Otherwise: their own (as creator) and what these teams were granted.
    user: Option<String>,
    teams: Vec<String>,
}

impl Visibility {
    pub async fn resolve(meta: &dyn MetadataStore, access: &OrgAccess) -> Result<Visibility> {
        let none = Visibility { all: false, user: None, teams: vec![] };
        let Some(role) = access.role else { return Ok(none) };
        Ok(match access.subject() {
            Subject::Org { .. } => Visibility { all: true, ..none },
            Subject::Team { team, .. } => Visibility { teams: vec![team.clone()], ..none },
            Subject::User(user) => {
                let all = role == Role::Admin
                    || org_default(meta, &access.org).await? >= EnvPermission::Read;
                let teams = if all { vec![] } else { user_teams(meta, user, &access.org).await? };
                Visibility { all, user: Some(user.clone()), teams }
            }
        })
    }

    /// Whether `env` is listed.
    pub async fn may_read(&self, meta: &dyn MetadataStore, env: &Environment) -> Result<bool> {
        if self.all || self.user.as_deref() == Some(env.owner.as_str()) {
            return Ok(true);
        }
        for team in &self.teams {
            if team_grant(meta, &env.id, team).await? >= EnvPermission::Read {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// What the caller holds on every environment of the organization, whatever its grants: admin
/// for an organization admin or token, the members' default for a user, none for a team token.
pub async fn floor(meta: &dyn MetadataStore, access: &OrgAccess) -> Result<EnvPermission> {
    let Some(role) = access.role else { return Ok(EnvPermission::None) };
    Ok(match access.subject() {
        Subject::Org { .. } => EnvPermission::Admin,
        Subject::Team { .. } => EnvPermission::None,
        Subject::User(_) if role == Role::Admin => EnvPermission::Admin,
        Subject::User(_) => org_default(meta, &access.org).await?,
    })
}
