//! Users, organizations, memberships and access tokens.

use sha2::{Digest, Sha256};

use super::keys;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Value};

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A public route; nobody in particular.
    Anonymous,
    /// A user, through one of their access tokens.
    User {
        /// The user name (their `githubLogin`).
        user: String,
        /// The name of the token used.
        token_name: String,
    },
    /// The holder of an update's lease (`update-token`), bound to that update.
    Lease(Box<crate::service::updates::Update>),
}

impl Caller {
    /// The user name, or 401 for anonymous callers.
    pub fn user(&self) -> Result<&str> {
        match self {
            Caller::User { user, .. } => Ok(user),
            Caller::Anonymous | Caller::Lease(_) => {
                Err(Error::Unauthorized("this call needs an access token".into()))
            }
        }
    }

    /// The update whose lease authenticated the call.
    pub fn lease(&self) -> Result<&crate::service::updates::Update> {
        match self {
            Caller::Lease(u) => Ok(u),
            _ => Err(Error::Unauthorized("this call needs an update token".into())),
        }
    }
}

/// Role of a member in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Manages the organization.
    Admin,
    /// Uses the organization.
    Member,
}

impl Role {
    /// Stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A user profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Email, possibly empty.
    pub email: String,
    /// Organization the CLI uses when none is given.
    pub default_org: Option<String>,
}

/// SHA-256 hex of an access token: the only form in which tokens are stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random access token, shaped like Pulumi's (`pul-` + 40 hex digits).
pub fn new_token() -> String {
    format!("pul-{}", hex::encode(rand::random::<[u8; 20]>()))
}

/// Resolves an access token to its user. Unknown, revoked and expired tokens get 401.
pub async fn authenticate_token(meta: &dyn MetadataStore, token: &str, now: i64) -> Result<Caller> {
    let invalid = || Error::Unauthorized("the access token is invalid, expired or revoked".into());
    let item =
        meta.get(&keys::token_pk(&hash_token(token)), keys::TOKEN_SK).await?.ok_or_else(invalid)?;
    if item.bool("revoked") == Some(true) {
        return Err(invalid());
    }
    if matches!(item.n("expires"), Some(exp) if exp > 0 && exp <= now) {
        return Err(invalid());
    }
    let user = item.s("user").ok_or_else(invalid)?.to_string();
    let token_name = item.s("name").unwrap_or_default().to_string();
    Ok(Caller::User { user, token_name })
}

/// Reads a user profile.
pub async fn get_user(meta: &dyn MetadataStore, name: &str) -> Result<Option<User>> {
    Ok(meta.get(&keys::user_pk(name), keys::USER_SK).await?.map(|item| User {
        name: name.to_string(),
        email: item.s("email").unwrap_or_default().to_string(),
        default_org: item.s("default_org").map(str::to_string),
    }))
}

/// The organizations a user belongs to, sorted by name.
pub async fn user_orgs(meta: &dyn MetadataStore, user: &str) -> Result<Vec<(String, Role)>> {
    let mut out = Vec::new();
    let mut query = Query::prefix(keys::user_pk(user), keys::USER_ORG_PREFIX, 100);
    loop {
        let page = meta.query(query.clone()).await?;
        for item in page.items {
            let org = item.sk.trim_start_matches(keys::USER_ORG_PREFIX).to_string();
            let role = item.s("role").and_then(Role::parse).unwrap_or(Role::Member);
            out.push((org, role));
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// The caller's role in `org`: 404 if the organization does not exist, 403 if the caller is not
/// a member.
pub async fn require_member(meta: &dyn MetadataStore, user: &str, org: &str) -> Result<Role> {
    if let Some(item) = meta.get(&keys::org_pk(org), &keys::org_member_sk(user)).await? {
        return Ok(item.s("role").and_then(Role::parse).unwrap_or(Role::Member));
    }
    if meta.get(&keys::org_pk(org), keys::ORG_SK).await?.is_none() {
        return Err(Error::NotFound(format!("organization '{org}' does not exist")));
    }
    Err(Error::Forbidden(format!("user '{user}' is not a member of organization '{org}'")))
}

/// What [`ensure_identity`] found or created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ensured {
    /// The user was created now.
    pub created_user: bool,
    /// The organization was created now.
    pub created_org: bool,
    /// The token was stored now.
    pub created_token: bool,
}

fn ignore_exists(r: std::result::Result<(), MetaError>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(MetaError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes sure a user, an organization with the user as admin, and (when given) an access token
/// of that user exist. Idempotent and safe to run concurrently: every write is create-if-absent.
pub async fn ensure_identity(
    meta: &dyn MetadataStore,
    user: &str,
    org: &str,
    token: Option<(&str, &str)>,
    now: i64,
) -> Result<Ensured> {
    let mut ensured = Ensured::default();
    let profile = Item::new(keys::user_pk(user), keys::USER_SK)
        .with("name", Value::S(user.into()))
        .with("default_org", Value::S(org.into()))
        .with("created", Value::N(now));
    ensured.created_user = ignore_exists(meta.put(profile, Some(Condition::NotExists)).await)?;
    let org_item = Item::new(keys::org_pk(org), keys::ORG_SK)
        .with("name", Value::S(org.into()))
        .with("created", Value::N(now));
    ensured.created_org = ignore_exists(meta.put(org_item, Some(Condition::NotExists)).await)?;
    // The organization index lets background jobs visit every stack. Written on every call
    // (create-if-absent), so organizations made before the index existed are added too.
    let indexed = Item::new(keys::ORGS_PK, keys::org_index_sk(org))
        .with("name", Value::S(org.into()))
        .with("created", Value::N(now));
    ignore_exists(meta.put(indexed, Some(Condition::NotExists)).await)?;
    if ensured.created_org
        || meta.get(&keys::org_pk(org), &keys::org_member_sk(user)).await?.is_none()
    {
        add_member(meta, org, user, Role::Admin, now).await?;
    }
    if let Some((token, name)) = token {
        let item = Item::new(keys::token_pk(&hash_token(token)), keys::TOKEN_SK)
            .with("user", Value::S(user.into()))
            .with("name", Value::S(name.into()))
            .with("created", Value::N(now));
        let cond = Condition::NotExists.or(Condition::Equals("user".into(), Value::S(user.into())));
        match meta.put(item, Some(cond)).await {
            Ok(()) => ensured.created_token = true,
            Err(MetaError::ConditionFailed) => {
                return Err(Error::Conflict("that token already belongs to another user".into()))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ensured)
}

/// Makes `user` a member of `org` with `role` (both membership items in one transaction).
pub async fn add_member(
    meta: &dyn MetadataStore,
    org: &str,
    user: &str,
    role: Role,
    now: i64,
) -> Result<()> {
    let member = Item::new(keys::org_pk(org), keys::org_member_sk(user))
        .with("role", Value::S(role.as_str().into()))
        .with("created", Value::N(now));
    let back = Item::new(keys::user_pk(user), keys::user_org_sk(org))
        .with("role", Value::S(role.as_str().into()))
        .with("created", Value::N(now));
    meta.transact(vec![TransactOp::Put(member, None), TransactOp::Put(back, None)]).await?;
    Ok(())
}

/// Stores a new access token for `user` and returns it; only its hash is kept.
pub async fn create_token(
    meta: &dyn MetadataStore,
    user: &str,
    name: &str,
    now: i64,
) -> Result<String> {
    let token = new_token();
    let item = Item::new(keys::token_pk(&hash_token(&token)), keys::TOKEN_SK)
        .with("user", Value::S(user.into()))
        .with("name", Value::S(name.into()))
        .with("created", Value::N(now));
    meta.put(item, Some(Condition::NotExists)).await?;
    Ok(token)
}
