//! Access tokens: personal, organization and team tokens (Pulumi Cloud's token routes).
//!
//! A token lives as two items written and deleted together in one transaction:
//!
//! - the token item `TOKEN#<sha256>`/`TOKEN`, what [`identity::authenticate_token`] reads;
//! - a listing item under its owner (`USER#<user>`/`TOKEN#<id>`, `ORG#<org>`/`TOKEN#<id>` or
//!   `ORG#<org>`/`TEAMTOKEN#<team>#<id>`) holding the hash, so tokens can be listed and revoked
//!   by id without ever storing their value.
//!
//! Organization and team tokens also claim their name (`TOKENNAME#…`) in the same transaction,
//! which keeps names unique without a read-then-write race.

use super::identity::{self, TOKEN_KIND_ORG, TOKEN_KIND_PERSONAL, TOKEN_KIND_TEAM};
use super::item_keys;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Value};

/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest token description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Whose tokens: where the listing item lives and what the token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A user's personal tokens.
    User(String),
    /// An organization's tokens.
    Org(String),
    /// A team's tokens.
    Team {
        /// The organization.
        org: String,
        /// The team.
        team: String,
    },
}

impl Owner {
    fn pk(&self) -> String {
        match self {
            Owner::User(user) => item_keys::user_pk(user),
            Owner::Org(org) | Owner::Team { org, .. } => item_keys::org_pk(org),
        }
    }

    fn listing_sk(&self, id: &str) -> String {
        match self {
            Owner::User(_) | Owner::Org(_) => item_keys::owner_token_sk(id),
            Owner::Team { team, .. } => item_keys::team_token_sk(team, id),
        }
    }

    fn listing_prefix(&self) -> String {
        match self {
            Owner::User(_) | Owner::Org(_) => item_keys::OWNER_TOKEN_PREFIX.to_string(),
            Owner::Team { team, .. } => item_keys::team_tokens_prefix(team),
        }
    }

    /// The name claim of a token of this owner; personal tokens' names need not be unique.
    fn name_claim_sk(&self, name: &str) -> Option<String> {
        match self {
            Owner::User(_) => None,
            Owner::Org(_) => Some(item_keys::org_token_name_sk(name)),
            Owner::Team { team, .. } => Some(item_keys::team_token_name_sk(team, name)),
        }
    }

    /// The attributes of the token item that say what the token acts as.
    fn subject_attrs(&self, item: Item, admin: bool) -> Item {
        match self {
            Owner::User(user) => item
                .with("kind", Value::S(TOKEN_KIND_PERSONAL.into()))
                .with("user", Value::S(user.clone())),
            Owner::Org(org) => item
                .with("kind", Value::S(TOKEN_KIND_ORG.into()))
                .with("org", Value::S(org.clone()))
                .with("admin", Value::Bool(admin)),
            Owner::Team { org, team } => item
                .with("kind", Value::S(TOKEN_KIND_TEAM.into()))
                .with("org", Value::S(org.clone()))
                .with("team", Value::S(team.clone())),
        }
    }
}

/// A validated token creation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Name (shown as the requester of what the token does).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Unix seconds after which the token stops working; 0 = never.
    pub expires: i64,
    /// An organization token that may administer its organization.
    pub admin: bool,
}

impl NewToken {
    /// Checks a request at time `now`: name and description lengths, no control characters,
    /// an expiry in the future (or 0).
    pub fn parse(
        name: &str,
        description: &str,
        expires: i64,
        admin: bool,
        now: i64,
    ) -> Result<NewToken> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::BadRequest("a token name must not be empty".into()));
        }
        check_text("name", name, MAX_NAME_CHARS)?;
        check_text("description", description, MAX_DESCRIPTION_CHARS)?;
        if expires < 0 || (expires != 0 && expires <= now) {
            return Err(Error::BadRequest(format!(
                "expires must be 0 (never) or a future time in Unix seconds, not {expires}"
            )));
        }
        Ok(NewToken { name: name.into(), description: description.into(), expires, admin })
    }
}

fn check_text(what: &str, text: &str, max: usize) -> Result<()> {
    if text.chars().count() > max {
        return Err(Error::BadRequest(format!("token {what} too long (max {max} characters)")));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!("token {what} must not contain control characters")));
    }
    Ok(())
}

/// A token as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Stable id ([`identity::token_id`]).
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last authenticated use (to within a minute); 0 = never.
    pub last_used: i64,
    /// Unix seconds; 0 = never.
    pub expires: i64,
    /// Organization tokens: whether it administers the organization.
    pub admin: bool,
}

/// The two items of a token (token item, listing item) for `owner`.
fn token_items(owner: &Owner, hash: &str, t: &NewToken, now: i64) -> (Item, Item) {
    let id = identity::token_id(hash);
    let token = owner
        .subject_attrs(Item::new(item_keys::token_pk(hash), item_keys::TOKEN_SK), t.admin)
        .with("id", Value::S(id.clone()))
        .with("name", Value::S(t.name.clone()))
        .with("created", Value::N(now))
        .with("expires", Value::N(t.expires));
    let listing = Item::new(owner.pk(), owner.listing_sk(&id))
        .with("hash", Value::S(hash.into()))
        .with("name", Value::S(t.name.clone()))
        .with("description", Value::S(t.description.clone()))
        .with("created", Value::N(now))
        .with("expires", Value::N(t.expires))
        .with("admin", Value::Bool(t.admin));
    (token, listing)
}

/// The writes that create a token with the given hash: both items (and the name claim)
/// create-if-absent, plus, for a team token, a check that the team still exists.
fn create_ops(owner: &Owner, hash: &str, t: &NewToken, now: i64) -> Vec<TransactOp> {
    let (token, listing) = token_items(owner, hash, t, now);
    let mut ops = vec![
        TransactOp::Put(token, Some(Condition::NotExists)),
        TransactOp::Put(listing, Some(Condition::NotExists)),
    ];
    if let Some(sk) = owner.name_claim_sk(&t.name) {
        let claim = Item::new(owner.pk(), sk)
            .with("id", Value::S(identity::token_id(hash)))
            .with("created", Value::N(now));
        ops.push(TransactOp::Put(claim, Some(Condition::NotExists)));
    }
    if let Owner::Team { org, team } = owner {
        ops.push(TransactOp::Check {
            pk: item_keys::org_pk(org),
            sk: item_keys::team_sk(team),
            condition: Condition::Exists,
        });
    }
    ops
}

/// 404 unless the team of a team owner exists (other owners were checked by authorisation).
async fn require_owner(meta: &dyn MetadataStore, owner: &Owner) -> Result<()> {
    if let Owner::Team { org, team } = owner {
        if meta.get(&item_keys::org_pk(org), &item_keys::team_sk(team)).await?.is_none() {
            return Err(Error::NotFound(format!(
                "team '{team}' does not exist in organization '{org}'"
            )));
        }
    }
    Ok(())
}

/// Creates a token for `owner` and returns its info and its value: the only time the value
/// exists outside the caller's hands (only its SHA-256 is stored).
pub async fn create(
    meta: &dyn MetadataStore,
    owner: &Owner,
    t: &NewToken,
    now: i64,
) -> Result<(TokenInfo, String)> {
    require_owner(meta, owner).await?;
    let value = identity::new_token();
    let hash = identity::hash_token(&value);
    match meta.transact(create_ops(owner, &hash, t, now)).await {
        Ok(()) => {}
        Err(MetaError::ConditionFailed) => {
            // The team may have gone meanwhile; otherwise the name is taken (a collision of
            // 160-bit random values is not a case to report).
            require_owner(meta, owner).await?;
            return Err(Error::Conflict(format!("a token named '{}' already exists", t.name)));
        }
        Err(e) => return Err(e.into()),
    }
    let info = TokenInfo {
        id: identity::token_id(&hash),
        name: t.name.clone(),
        description: t.description.clone(),
        created: now,
        last_used: 0,
        expires: t.expires,
        admin: t.admin,
    };
    Ok((info, value))
}

/// Stores a personal token whose value the operator chose (`STACKHOUSE_BOOTSTRAP_TOKEN`), with
/// its listing item. Idempotent: a token already stored for this user only gets its listing
/// item added if missing (tokens made before listings existed); one of another owner is 409.
/// Returns whether the token was stored now.
pub async fn ensure_personal(
    meta: &dyn MetadataStore,
    user: &str,
    value: &str,
    name: &str,
    now: i64,
) -> Result<bool> {
    let owner = Owner::User(user.to_string());
    let hash = identity::hash_token(value);
    let t = NewToken { name: name.into(), description: name.into(), expires: 0, admin: false };
    let taken = || Error::Conflict("that token already belongs to someone else".into());
    if let Some(existing) = meta.get(&item_keys::token_pk(&hash), item_keys::TOKEN_SK).await? {
        let kind = existing.s("kind").unwrap_or(TOKEN_KIND_PERSONAL);
        if kind != TOKEN_KIND_PERSONAL || existing.s("user") != Some(user) {
            return Err(taken());
        }
        let (_, listing) = token_items(&owner, &hash, &t, existing.n("created").unwrap_or(now));
        match meta.put(listing, Some(Condition::NotExists)).await {
            Ok(()) | Err(MetaError::ConditionFailed) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    match meta.transact(create_ops(&owner, &hash, &t, now)).await {
        Ok(()) => Ok(true),
        // Stored concurrently (two emulators starting): fine if it is ours.
        Err(MetaError::ConditionFailed) => {
            match meta.get(&item_keys::token_pk(&hash), item_keys::TOKEN_SK).await? {
                Some(item) if item.s("user") == Some(user) => Ok(false),
                _ => Err(taken()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The tokens of `owner`, oldest first, with their last-used times.
pub async fn list(meta: &dyn MetadataStore, owner: &Owner) -> Result<Vec<TokenInfo>> {
    require_owner(meta, owner).await?;
    let prefix = owner.listing_prefix();
    let mut query = Query::prefix(owner.pk(), prefix.clone(), 100);
    let mut out = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        for item in page.items {
            let Some(hash) = item.s("hash") else { continue };
            // The last-used time lives on the token item: the only one authentication may
            // write (see `item_keys::BOOKKEEPING_KEY_PREFIXES`).
            let token = meta.get(&item_keys::token_pk(hash), item_keys::TOKEN_SK).await?;
            let Some(token) = token else { continue };
            out.push(TokenInfo {
                id: item.sk.trim_start_matches(prefix.as_str()).to_string(),
                name: item.s("name").unwrap_or_default().to_string(),
                description: item.s("description").unwrap_or_default().to_string(),
                created: item.n("created").unwrap_or_default(),
                last_used: token.n("last_used").unwrap_or_default(),
                expires: item.n("expires").unwrap_or_default(),
                admin: item.bool("admin") == Some(true),
            });
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(out)
}

/// Revokes a token of `owner` by id: its items go in one transaction, so the very next request
/// with it gets 401. 404 if the owner has no such token.
pub async fn revoke(meta: &dyn MetadataStore, owner: &Owner, id: &str) -> Result<()> {
    let missing = || Error::NotFound(format!("token '{id}' does not exist"));
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(missing());
    }
    require_owner(meta, owner).await?;
    let (pk, sk) = (owner.pk(), owner.listing_sk(id));
    let listing = meta.get(&pk, &sk).await?.ok_or_else(missing)?;
    let hash =
        listing.s("hash").ok_or_else(|| Error::internal(format!("{pk}/{sk} has no hash")))?;
    let mut ops = vec![
        TransactOp::Delete { pk: pk.clone(), sk: sk.clone(), condition: Some(Condition::Exists) },
        TransactOp::Delete {
            pk: item_keys::token_pk(hash),
            sk: item_keys::TOKEN_SK.into(),
            condition: None,
        },
    ];
    if let Some(claim) = listing.s("name").and_then(|n| owner.name_claim_sk(n)) {
        ops.push(TransactOp::Delete { pk, sk: claim, condition: None });
    }
    match meta.transact(ops).await {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// Creates a personal token for `user` with no expiry (bootstrap and `admin create-user`).
pub async fn create_personal(
    meta: &dyn MetadataStore,
    user: &str,
    name: &str,
    now: i64,
) -> Result<String> {
    let t = NewToken { name: name.into(), description: name.into(), expires: 0, admin: false };
    let (_, value) = create(meta, &Owner::User(user.to_string()), &t, now).await?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_validated() {
        let now = 1_000;
        assert!(NewToken::parse("ci", "", 0, false, now).is_ok());
        assert!(NewToken::parse("ci", "", now + 1, false, now).is_ok());
        for (name, description, expires) in [
            ("", "", 0),
            ("  ", "", 0),
            ("ci", "", now),
            ("ci", "", -5),
            ("a\nb", "", 0),
            ("ci", "x\u{7}", 0),
        ] {
            let e = NewToken::parse(name, description, expires, false, now);
            assert!(matches!(e, Err(Error::BadRequest(_))), "{name:?} {description:?} {expires}");
        }
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(matches!(NewToken::parse(&long, "", 0, false, now), Err(Error::BadRequest(_))));
        let long = "x".repeat(MAX_DESCRIPTION_CHARS + 1);
        assert!(matches!(NewToken::parse("n", &long, 0, false, now), Err(Error::BadRequest(_))));
    }

    #[test]
    fn team_tokens_check_their_team_and_claim_their_name() {
        let owner = Owner::Team { org: "acme".into(), team: "ops".into() };
        let t =
            NewToken { name: "ci".into(), description: String::new(), expires: 0, admin: false };
        let ops = create_ops(&owner, "ab".repeat(32).as_str(), &t, 5);
        assert_eq!(ops.len(), 4);
        assert!(ops.iter().any(|op| op.key() == ("ORG#acme", "TEAM#ops")));
        assert!(ops.iter().any(|op| op.key() == ("ORG#acme", "TEAMTOKENNAME#ops#ci")));
        assert!(ops.iter().any(|op| op.key().1.starts_with("TEAMTOKEN#ops#")));
    }
}
