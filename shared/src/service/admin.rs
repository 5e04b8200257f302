//! Operator actions outside the HTTP API: creating a user with a role in an organization and a
//! fresh personal access token. One implementation behind `local-emulator admin create-user`
//! and the `job-admin-create-user` function a deployed stack is bootstrapped with.

use serde::{Deserialize, Serialize};

use super::identity::{self, Role};
use super::item_keys;
use crate::error::{Error, Result};
use crate::names::OrgName;
use crate::ports::{Condition, Item, MetaError, MetadataStore, Value};

/// Name of the tokens this creates (shown in token lists and as `tokenInfo.name`).
pub const TOKEN_NAME: &str = "admin create-user";

/// What to create, as the function's payload spells it:
/// `{"name":"alice","org":"acme","role":"admin"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CreateUserRequest {
    /// User name.
    pub name: String,
    /// Organization (created if missing).
    pub org: String,
    /// `admin` or `member`.
    pub role: String,
}

/// The function's response: the new token, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CreateUserResponse {
    /// The personal access token.
    pub token: String,
}

/// A validated [`CreateUserRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateUser {
    /// User name.
    pub name: OrgName,
    /// Organization.
    pub org: OrgName,
    /// Role in the organization.
    pub role: Role,
}

impl CreateUserRequest {
    /// Validates names and role (400 with the reason).
    pub fn validate(&self) -> Result<CreateUser> {
        let role = Role::parse(&self.role).ok_or_else(|| {
            Error::BadRequest(format!("role must be admin or member, not {:?}", self.role))
        })?;
        Ok(CreateUser { name: OrgName::parse(&self.name)?, org: OrgName::parse(&self.org)?, role })
    }
}

/// Creates the user (if missing) and the organization (if missing), makes the user a member
/// with `role` (changing the role of an existing member) and returns a new personal access
/// token of the user. Safe to repeat: each run only adds another token.
pub async fn create_user(meta: &dyn MetadataStore, req: &CreateUser, now: i64) -> Result<String> {
    let (user, org) = (req.name.as_str(), req.org.as_str());
    let profile = Item::new(item_keys::user_pk(user), item_keys::USER_SK)
        .with("name", Value::S(user.into()))
        .with("default_org", Value::S(org.into()))
        .with("created", Value::N(now));
    create_if_absent(meta, profile).await?;
    let org_item = Item::new(item_keys::org_pk(org), item_keys::ORG_SK)
        .with("name", Value::S(org.into()))
        .with("created", Value::N(now));
    create_if_absent(meta, org_item).await?;
    // Background jobs find every organization through this index.
    let indexed = Item::new(item_keys::ORGS_PK, item_keys::org_index_sk(org))
        .with("name", Value::S(org.into()))
        .with("created", Value::N(now));
    create_if_absent(meta, indexed).await?;
    identity::add_member(meta, org, user, req.role, now).await?;
    identity::create_token(meta, user, TOKEN_NAME, now).await
}

async fn create_if_absent(meta: &dyn MetadataStore, item: Item) -> Result<()> {
    match meta.put(item, Some(Condition::NotExists)).await {
        Ok(()) | Err(MetaError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_validated() {
        let req = |name: &str, org: &str, role: &str| CreateUserRequest {
            name: name.into(),
            org: org.into(),
            role: role.into(),
        };
        let ok = req("alice", "acme", "member").validate().expect("valid");
        assert_eq!(ok.role, Role::Member);
        for bad in
            [req("alice", "acme", "owner"), req("", "acme", "admin"), req("a", "a/b", "admin")]
        {
            assert!(matches!(bad.validate(), Err(Error::BadRequest(_))), "{bad:?}");
        }
    }
}
