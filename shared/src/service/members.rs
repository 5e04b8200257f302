//! Organization members, their roles, the organization's settings, and stack collaborators
//! (users given a permission on one stack directly).

use super::access::{query_all, StackPermission};
use super::identity::{self, Role};
use super::item_keys;
use crate::error::{Error, Result};
use crate::names::UserName;
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Value};
use crate::service::stacks::Stack;

/// A member of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
    /// When they joined (Unix seconds).
    pub created: i64,
}

/// The organization's members, by name.
pub async fn list(meta: &dyn MetadataStore, org: &str) -> Result<Vec<Member>> {
    let items = query_all(meta, Query::prefix(item_keys::org_pk(org), "MEMBER#", 100)).await?;
    Ok(items
        .iter()
        .map(|i| Member {
            user: i.sk.trim_start_matches("MEMBER#").to_string(),
            role: i.s("role").and_then(Role::parse).unwrap_or(Role::Member),
            created: i.n("created").unwrap_or(0),
        })
        .collect())
}

/// Adds an existing user to the organization with `role`, or changes their role. Refuses to
/// leave the organization without an admin.
pub async fn set_role(
    meta: &dyn MetadataStore,
    org: &str,
    user: &UserName,
    role: Role,
    now: i64,
) -> Result<()> {
    let user = user.as_str();
    if identity::get_user(meta, user).await?.is_none() {
        return Err(Error::NotFound(format!("user '{user}' does not exist")));
    }
    if role == Role::Member {
        ensure_other_admin(meta, org, user).await?;
    }
    identity::add_member(meta, org, user, role, now).await
}

/// Removes a member (and their team memberships in the organization); 404 if not a member.
/// Refuses to remove the last admin.
pub async fn remove(meta: &dyn MetadataStore, org: &str, user: &str) -> Result<()> {
    if meta.get(&item_keys::org_pk(org), &item_keys::org_member_sk(user)).await?.is_none() {
        return Err(Error::NotFound(format!("'{user}' is not a member of '{org}'")));
    }
    ensure_other_admin(meta, org, user).await?;
    super::teams::remove_user_from_all(meta, org, user).await?;
    meta.transact(vec![
        TransactOp::Delete {
            pk: item_keys::org_pk(org),
            sk: item_keys::org_member_sk(user),
            condition: None,
        },
        TransactOp::Delete {
            pk: item_keys::user_pk(user),
            sk: item_keys::user_org_sk(org),
            condition: None,
        },
    ])
    .await?;
    Ok(())
}

/// 409 when `user` is the organization's only admin (demoting or removing them would leave
/// nobody able to administer it).
async fn ensure_other_admin(meta: &dyn MetadataStore, org: &str, user: &str) -> Result<()> {
    let members = list(meta, org).await?;
    let is_admin = members.iter().any(|m| m.user == user && m.role == Role::Admin);
    let others = members.iter().filter(|m| m.user != user && m.role == Role::Admin).count();
    if is_admin && others == 0 {
        return Err(Error::Conflict(format!(
            "'{user}' is the only admin of '{org}'; make someone else admin first"
        )));
    }
    Ok(())
}

/// Sets the organization's default stack permission for members.
pub async fn set_default_permission(
    meta: &dyn MetadataStore,
    org: &str,
    permission: StackPermission,
) -> Result<()> {
    let mut item = meta
        .get(&item_keys::org_pk(org), item_keys::ORG_SK)
        .await?
        .ok_or_else(|| Error::NotFound(format!("organization '{org}' does not exist")))?;
    item.set("default_stack_permission", Value::N(permission.code()));
    meta.put(item, Some(Condition::Exists)).await?;
    Ok(())
}

/// A stack's collaborators (direct user grants), by name.
pub async fn collaborators(
    meta: &dyn MetadataStore,
    stack: &Stack,
) -> Result<Vec<(String, StackPermission)>> {
    let q = Query::prefix(item_keys::stack_id_pk(&stack.id), item_keys::STACK_USER_PREFIX, 100);
    Ok(query_all(meta, q)
        .await?
        .iter()
        .map(|i| {
            let perm = i
                .n("permission")
                .and_then(StackPermission::from_code)
                .unwrap_or(StackPermission::None);
            (i.sk.trim_start_matches(item_keys::STACK_USER_PREFIX).to_string(), perm)
        })
        .collect())
}

/// Gives an organization member `permission` on a stack directly; `None` removes the grant.
pub async fn set_collaborator(
    meta: &dyn MetadataStore,
    stack: &Stack,
    user: &UserName,
    permission: StackPermission,
) -> Result<()> {
    let (pk, sk) = (item_keys::stack_id_pk(&stack.id), item_keys::stack_user_sk(user.as_str()));
    if permission == StackPermission::None {
        meta.delete(&pk, &sk, None).await?;
        return Ok(());
    }
    let ops = vec![
        TransactOp::Check {
            pk: item_keys::org_pk(&stack.org),
            sk: item_keys::org_member_sk(user.as_str()),
            condition: Condition::Exists,
        },
        TransactOp::Put(Item::new(pk, sk).with("permission", Value::N(permission.code())), None),
    ];
    match meta.transact(ops).await {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => Err(Error::BadRequest(format!(
            "'{user}' is not a member of organization '{}'",
            stack.org
        ))),
        Err(e) => Err(e.into()),
    }
}
