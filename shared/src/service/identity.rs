//! Users, organizations, memberships and access tokens.

use sha2::{Digest, Sha256};

use super::item_keys;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Value};

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A public route; nobody in particular.
    Anonymous,
    /// The holder of an access token (personal, organization or team).
    Token(Principal),
    /// The holder of an update's lease (`update-token`), bound to that update.
    Lease(Box<crate::service::updates::Update>),
}

/// Whose access token authenticated a call, and which token it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What the token acts as.
    pub subject: Subject,
    /// Stable token id (for audit entries and revocation).
    pub token_id: String,
    /// The token's name.
    pub token_name: String,
    /// Set for the short-lived token of a deployment's runner: it reaches only that
    /// deployment's stack (see `api::auth::authorize`).
    pub deployment: Option<DeploymentScope>,
}

/// What a deployment's token may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentScope {
    /// The deployment.
    pub id: String,
    /// Its stack's organization.
    pub org: String,
    /// Its stack's immutable id.
    pub stack_id: String,
}

/// What an access token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user (personal access token).
    User(String),
    /// An organization (organization access token): admin of that organization when `admin`,
    /// otherwise a member with admin permission on its stacks.
    Org {
        /// The organization.
        org: String,
        /// Whether the token may administer the organization.
        admin: bool,
    },
    /// A team (team access token): exactly the team's stack permissions in its organization.
    Team {
        /// The organization.
        org: String,
        /// The team.
        team: String,
    },
}

impl Principal {
    /// The login name the token acts as: the user, or the organization or team name (what
    /// Pulumi Cloud shows as the requester of an organization or team token's updates).
    pub fn login(&self) -> &str {
        match &self.subject {
            Subject::User(user) => user,
            Subject::Org { org, .. } => org,
            Subject::Team { team, .. } => team,
        }
    }

    /// The user behind a personal token; None for organization and team tokens.
    pub fn user(&self) -> Option<&str> {
        match &self.subject {
            Subject::User(user) => Some(user),
            _ => None,
        }
    }
}

impl Caller {
    /// The login name of an access-token caller (see [`Principal::login`]), or 401.
    pub fn user(&self) -> Result<&str> {
        Ok(self.principal()?.login())
    }

    /// The access-token principal, or 401 for anonymous and lease callers.
    pub fn principal(&self) -> Result<&Principal> {
        match self {
            Caller::Token(p) => Ok(p),
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

/// Stable id of a token, derived from its hash: shown in token lists and audit entries and used
/// to revoke it. A prefix of a SHA-256 reveals nothing usable about a 160-bit random token.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(20).collect()
}

/// Resolves an access token to its principal. Unknown, revoked and expired tokens get 401.
///
/// Tokens are found by the SHA-256 of the presented value, so no stored secret is ever compared
/// byte by byte (nothing to time), and a revoked token (its item deleted) fails on the very next
/// request: there is no cache.
pub async fn authenticate_token(meta: &dyn MetadataStore, token: &str, now: i64) -> Result<Caller> {
    let invalid = || Error::Unauthorized("the access token is invalid, expired or revoked".into());
    let hash = hash_token(token);
    let item =
        meta.get(&item_keys::token_pk(&hash), item_keys::TOKEN_SK).await?.ok_or_else(invalid)?;
    if !usable(&item, now) {
        return Err(invalid());
    }
    let subject = match item.s("kind").unwrap_or(TOKEN_KIND_PERSONAL) {
        TOKEN_KIND_PERSONAL => Subject::User(item.s("user").ok_or_else(invalid)?.to_string()),
        TOKEN_KIND_ORG => Subject::Org {
            org: item.s("org").ok_or_else(invalid)?.to_string(),
            admin: item.bool("admin") == Some(true),
        },
        TOKEN_KIND_TEAM => Subject::Team {
            org: item.s("org").ok_or_else(invalid)?.to_string(),
            team: item.s("team").ok_or_else(invalid)?.to_string(),
        },
        _ => return Err(invalid()),
    };
    let deployment = match (item.s("deployment"), item.s("scope_org"), item.s("scope_stack")) {
        (Some(id), Some(org), Some(stack_id)) => Some(DeploymentScope {
            id: id.to_string(),
            org: org.to_string(),
            stack_id: stack_id.to_string(),
        }),
        (None, _, _) => None,
        // A deployment token whose scope does not read reaches nothing.
        _ => return Err(invalid()),
    };
    let principal = Principal {
        subject,
        token_id: item.s("id").map(str::to_string).unwrap_or_else(|| token_id(&hash)),
        token_name: item.s("name").unwrap_or_default().to_string(),
        deployment,
    };
    record_last_used(meta, item, now).await;
    Ok(Caller::Token(principal))
}

/// Whether a stored token item may still authenticate: not revoked, not expired.
fn usable(item: &Item, now: i64) -> bool {
    item.bool("revoked") != Some(true)
        && !matches!(item.n("expires"), Some(exp) if exp > 0 && exp <= now)
}

/// Whether the token with this SHA-256 still authenticates (it may have been revoked or have
/// expired since it was presented): for what outlives a request, such as a WebSocket.
pub async fn token_still_valid(meta: &dyn MetadataStore, hash: &str, now: i64) -> Result<bool> {
    let item = meta.get(&item_keys::token_pk(hash), item_keys::TOKEN_SK).await?;
    Ok(item.is_some_and(|item| usable(&item, now)))
}

/// How stale a token's stored last-used time may get before a request writes it again: at most
/// one write per token and minute, however busy the token is.
pub const LAST_USED_GRAIN_SECONDS: i64 = 60;

/// Writes the token's last-used time when it is missing or older than the grain. Only if the
/// token item still exists (`Condition::Exists`), so a token revoked meanwhile is never
/// brought back. Best effort: failing to record it must not fail the request.
pub async fn record_last_used(meta: &dyn MetadataStore, mut item: Item, now: i64) {
    if matches!(item.n("last_used"), Some(t) if t > now - LAST_USED_GRAIN_SECONDS) {
        return;
    }
    item.set("last_used", Value::N(now));
    match meta.put(item, Some(Condition::Exists)).await {
        Ok(()) => {}
        Err(MetaError::ConditionFailed) => tracing::debug!("token revoked while in use"),
        Err(e) => tracing::warn!(error = %e, "could not record a token's last use"),
    }
}

/// `kind` of a personal access token item (also assumed when `kind` is absent).
pub const TOKEN_KIND_PERSONAL: &str = "personal";
/// `kind` of an organization access token item.
pub const TOKEN_KIND_ORG: &str = "org";
/// `kind` of a team access token item.
pub const TOKEN_KIND_TEAM: &str = "team";

/// Reads a user profile.
pub async fn get_user(meta: &dyn MetadataStore, name: &str) -> Result<Option<User>> {
    Ok(meta.get(&item_keys::user_pk(name), item_keys::USER_SK).await?.map(|item| User {
        name: name.to_string(),
        email: item.s("email").unwrap_or_default().to_string(),
        default_org: item.s("default_org").map(str::to_string),
    }))
}

/// The organizations a user belongs to, sorted by name.
pub async fn user_orgs(meta: &dyn MetadataStore, user: &str) -> Result<Vec<(String, Role)>> {
    let mut out = Vec::new();
    let mut query = Query::prefix(item_keys::user_pk(user), item_keys::USER_ORG_PREFIX, 100);
    loop {
        let page = meta.query(query.clone()).await?;
        for item in page.items {
            let org = item.sk.trim_start_matches(item_keys::USER_ORG_PREFIX).to_string();
            let role = item.s("role").and_then(Role::parse).unwrap_or(Role::Member);
            out.push((org, role));
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// The organizations a principal acts in: a user's memberships, or the one organization of an
/// organization or team token.
pub async fn principal_orgs(
    meta: &dyn MetadataStore,
    principal: &Principal,
) -> Result<Vec<(String, Role)>> {
    match &principal.subject {
        Subject::User(user) => user_orgs(meta, user).await,
        Subject::Org { org, admin } => {
            Ok(vec![(org.clone(), if *admin { Role::Admin } else { Role::Member })])
        }
        Subject::Team { org, .. } => Ok(vec![(org.clone(), Role::Member)]),
    }
}

/// The caller's role in `org`: 404 if the organization does not exist or the caller is not a
/// member (the same answer, so names do not leak).
pub async fn require_member(meta: &dyn MetadataStore, user: &str, org: &str) -> Result<Role> {
    if let Some(item) = meta.get(&item_keys::org_pk(org), &item_keys::org_member_sk(user)).await? {
        return Ok(item.s("role").and_then(Role::parse).unwrap_or(Role::Member));
    }
    // An organization the caller does not belong to answers exactly like one that does not
    // exist, so that organization names cannot be probed.
    Err(Error::NotFound(format!("organization '{org}' does not exist")))
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
    let profile = Item::new(item_keys::user_pk(user), item_keys::USER_SK)
        .with("name", Value::S(user.into()))
        .with("default_org", Value::S(org.into()))
        .with("created", Value::N(now));
    ensured.created_user = ignore_exists(meta.put(profile, Some(Condition::NotExists)).await)?;
    let org_item = Item::new(item_keys::org_pk(org), item_keys::ORG_SK)
        .with("name", Value::S(org.into()))
        .with("created", Value::N(now));
    ensured.created_org = ignore_exists(meta.put(org_item, Some(Condition::NotExists)).await)?;
    // The organization index lets background jobs visit every stack. Written on every call
    // (create-if-absent), so organizations made before the index existed are added too.
    let indexed = Item::new(item_keys::ORGS_PK, item_keys::org_index_sk(org))
        .with("name", Value::S(org.into()))
        .with("created", Value::N(now));
    ignore_exists(meta.put(indexed, Some(Condition::NotExists)).await)?;
    if ensured.created_org
        || meta.get(&item_keys::org_pk(org), &item_keys::org_member_sk(user)).await?.is_none()
    {
        add_member(meta, org, user, Role::Admin, now).await?;
    }
    if let Some((token, name)) = token {
        // With its listing item, so it can be listed and revoked like any personal token.
        ensured.created_token =
            super::tokens::ensure_personal(meta, user, token, name, now).await?;
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
    let member = Item::new(item_keys::org_pk(org), item_keys::org_member_sk(user))
        .with("role", Value::S(role.as_str().into()))
        .with("created", Value::N(now));
    let back = Item::new(item_keys::user_pk(user), item_keys::user_org_sk(org))
        .with("role", Value::S(role.as_str().into()))
        .with("created", Value::N(now));
    meta.transact(vec![TransactOp::Put(member, None), TransactOp::Put(back, None)]).await?;
    Ok(())
}

/// Stores a new personal access token for `user` (with its listing item) and returns it; only
/// its hash is kept.
pub async fn create_token(
    meta: &dyn MetadataStore,
    user: &str,
    name: &str,
    now: i64,
) -> Result<String> {
    super::tokens::create_personal(meta, user, name, now).await
}
