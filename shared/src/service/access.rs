//! Who may do what: organization roles and stack permissions, resolved for a principal.
//!
//! A principal's permission on a stack is the highest of: organization admin (admin on every
//! stack), the stack's creator (admin), the organization's default for members, the
//! permissions of the principal's teams on the stack, and a direct grant (collaborator).
//! Organization tokens act as admins of their stacks; team tokens have exactly their team's
//! permissions. Sources are read cheapest first and reading stops once the answer is known.

use serde::{Deserialize, Serialize};

use super::identity::{Principal, Role, Subject};
use super::item_keys;
use crate::error::{Error, Result};
use crate::ports::{MetadataStore, Query};
use crate::service::stacks::Stack;

/// Permission on a stack, ordered; numeric codes are Pulumi Cloud's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StackPermission {
    /// No access: the stack is invisible (404).
    None,
    /// See the stack, its history, state and events.
    Read,
    /// Read, plus run updates, edit tags, encrypt and decrypt secrets, import.
    Write,
    /// Write, plus delete, rename and manage the stack's hooks and permissions.
    Admin,
}

impl StackPermission {
    /// Pulumi Cloud's code: 0, 101, 102, 103.
    pub fn code(self) -> i64 {
        match self {
            StackPermission::None => 0,
            StackPermission::Read => 101,
            StackPermission::Write => 102,
            StackPermission::Admin => 103,
        }
    }

    /// From Pulumi Cloud's code.
    pub fn from_code(code: i64) -> Option<StackPermission> {
        match code {
            0 => Some(StackPermission::None),
            101 => Some(StackPermission::Read),
            102 => Some(StackPermission::Write),
            103 => Some(StackPermission::Admin),
            _ => None,
        }
    }

    /// Lower-case name (`none`, `read`, `write`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            StackPermission::None => "none",
            StackPermission::Read => "read",
            StackPermission::Write => "write",
            StackPermission::Admin => "admin",
        }
    }

    /// From the lower-case name.
    pub fn parse(s: &str) -> Option<StackPermission> {
        match s {
            "none" => Some(StackPermission::None),
            "read" => Some(StackPermission::Read),
            "write" => Some(StackPermission::Write),
            "admin" => Some(StackPermission::Admin),
            _ => None,
        }
    }
}

/// Stack permission of members when the organization has not set one: members may read and
/// update every stack, as in a fresh Pulumi Cloud organization. Admins can lower it.
pub const DEFAULT_MEMBER_PERMISSION: StackPermission = StackPermission::Write;

/// A principal's standing in one organization, read once per request (or once per listed
/// organization).
#[derive(Debug, Clone)]
pub struct OrgAccess {
    /// The organization.
    pub org: String,
    /// The principal's role; None when not a member.
    pub role: Option<Role>,
    subject: Subject,
    default_permission: Option<StackPermission>,
}

impl OrgAccess {
    /// Resolves `principal`'s role in `org`. Organization and team tokens are members of their
    /// own organization only (an admin organization token is an admin). 404 when the
    /// organization does not exist and the principal is not a member.
    pub async fn resolve(
        meta: &dyn MetadataStore,
        principal: &Principal,
        org: &str,
    ) -> Result<OrgAccess> {
        let role = match &principal.subject {
            Subject::User(user) => meta
                .get(&item_keys::org_pk(org), &item_keys::org_member_sk(user))
                .await?
                .map(|item| item.s("role").and_then(Role::parse).unwrap_or(Role::Member)),
            Subject::Org { org: own, admin } => {
                (own == org).then_some(if *admin { Role::Admin } else { Role::Member })
            }
            Subject::Team { org: own, .. } => (own == org).then_some(Role::Member),
        };
        if role.is_none() && meta.get(&item_keys::org_pk(org), item_keys::ORG_SK).await?.is_none() {
            return Err(Error::NotFound(format!("organization '{org}' does not exist")));
        }
        Ok(OrgAccess {
            org: org.to_string(),
            role,
            subject: principal.subject.clone(),
            default_permission: None,
        })
    }

    /// Who is asking.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// 404 unless a member: an organization the caller does not belong to answers exactly like
    /// one that does not exist, so that organization names cannot be probed.
    pub fn require_member(&self) -> Result<Role> {
        self.role
            .ok_or_else(|| Error::NotFound(format!("organization '{}' does not exist", self.org)))
    }

    /// 403 unless an admin.
    pub fn require_admin(&self) -> Result<()> {
        match self.require_member()? {
            Role::Admin => Ok(()),
            Role::Member => Err(Error::Forbidden(format!(
                "this needs the admin role in organization '{}'",
                self.org
            ))),
        }
    }

    /// The principal's permission on `stack` (of this organization), reading no further once
    /// it is known to be at least `enough`.
    pub async fn stack_permission(
        &mut self,
        meta: &dyn MetadataStore,
        stack: &Stack,
        enough: StackPermission,
    ) -> Result<StackPermission> {
        self.stack_permission_by_id(meta, &stack.id, stack.creator.as_deref(), enough).await
    }

    /// [`OrgAccess::stack_permission`] for a stack known by its id and creator only (one that
    /// may have been renamed or deleted since, as an event's).
    pub async fn stack_permission_by_id(
        &mut self,
        meta: &dyn MetadataStore,
        stack_id: &str,
        creator: Option<&str>,
        enough: StackPermission,
    ) -> Result<StackPermission> {
        let Some(role) = self.role else { return Ok(StackPermission::None) };
        let user = match &self.subject {
            Subject::Org { .. } => return Ok(StackPermission::Admin),
            Subject::Team { team, .. } => {
                return team_permission(meta, stack_id, team).await;
            }
            Subject::User(user) => user.clone(),
        };
        if role == Role::Admin || creator == Some(user.as_str()) {
            return Ok(StackPermission::Admin);
        }
        let mut best = self.default_permission(meta).await?;
        if best >= enough {
            return Ok(best);
        }
        if let Some(item) =
            meta.get(&item_keys::stack_id_pk(stack_id), &item_keys::stack_user_sk(&user)).await?
        {
            best = best.max(item_permission(&item));
            if best >= enough {
                return Ok(best);
            }
        }
        let teams = user_teams(meta, &user, &self.org).await?;
        if teams.is_empty() {
            return Ok(best);
        }
        for (team, perm) in stack_team_permissions(meta, stack_id).await? {
            if teams.contains(&team) {
                best = best.max(perm);
            }
        }
        Ok(best)
    }

    /// Whether the principal may read every stack of the organization: an admin, an
    /// organization token, or a member while members' default permission is read or more.
    pub async fn reads_every_stack(&mut self, meta: &dyn MetadataStore) -> Result<bool> {
        let Some(role) = self.role else { return Ok(false) };
        Ok(match &self.subject {
            Subject::Org { .. } => true,
            Subject::Team { .. } => false,
            Subject::User(_) => {
                role == Role::Admin || self.default_permission(meta).await? >= StackPermission::Read
            }
        })
    }

    /// Whether the principal may read `stack` (of this organization).
    pub async fn may_read(&mut self, meta: &dyn MetadataStore, stack: &Stack) -> Result<bool> {
        if self.reads_every_stack(meta).await? {
            return Ok(true);
        }
        let permission = self.stack_permission(meta, stack, StackPermission::Read).await?;
        Ok(permission >= StackPermission::Read)
    }

    async fn default_permission(&mut self, meta: &dyn MetadataStore) -> Result<StackPermission> {
        if let Some(p) = self.default_permission {
            return Ok(p);
        }
        let p = org_default_permission(meta, &self.org).await?;
        self.default_permission = Some(p);
        Ok(p)
    }
}

/// The organization's default stack permission for members.
pub async fn org_default_permission(
    meta: &dyn MetadataStore,
    org: &str,
) -> Result<StackPermission> {
    Ok(meta
        .get(&item_keys::org_pk(org), item_keys::ORG_SK)
        .await?
        .and_then(|item| item.n("default_stack_permission"))
        .and_then(StackPermission::from_code)
        .unwrap_or(DEFAULT_MEMBER_PERMISSION))
}

fn item_permission(item: &crate::ports::Item) -> StackPermission {
    item.n("permission").and_then(StackPermission::from_code).unwrap_or(StackPermission::None)
}

async fn team_permission(
    meta: &dyn MetadataStore,
    stack_id: &str,
    team: &str,
) -> Result<StackPermission> {
    Ok(meta
        .get(&item_keys::stack_id_pk(stack_id), &item_keys::stack_team_sk(team))
        .await?
        .map(|item| item_permission(&item))
        .unwrap_or(StackPermission::None))
}

/// The teams `user` belongs to in `org`.
pub async fn user_teams(meta: &dyn MetadataStore, user: &str, org: &str) -> Result<Vec<String>> {
    let prefix = item_keys::user_teams_prefix(org);
    let items =
        query_all(meta, Query::prefix(item_keys::user_pk(user), prefix.clone(), 100)).await?;
    Ok(items.iter().map(|i| i.sk.trim_start_matches(&prefix).to_string()).collect())
}

/// Every team's permission on a stack.
pub async fn stack_team_permissions(
    meta: &dyn MetadataStore,
    stack_id: &str,
) -> Result<Vec<(String, StackPermission)>> {
    let q = Query::prefix(item_keys::stack_id_pk(stack_id), item_keys::STACK_TEAM_PREFIX, 100);
    let items = query_all(meta, q).await?;
    Ok(items
        .iter()
        .map(|i| {
            (i.sk.trim_start_matches(item_keys::STACK_TEAM_PREFIX).to_string(), item_permission(i))
        })
        .collect())
}

/// Every item of a query, following pages.
pub async fn query_all(
    meta: &dyn MetadataStore,
    mut query: Query,
) -> Result<Vec<crate::ports::Item>> {
    let mut out = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}
