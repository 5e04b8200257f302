//! Environments (issue 19, Pulumi ESC's REST API): documents by organization, project and name
//! with optimistic versions.
//!
//! * The environment item (`ORG#<org>` / `ENV#<project>/<name>`) holds its id and its head
//!   revision; the definition's ETag is the head revision's number.
//! * Each revision is an item under `ENV#<id>` (`REV#<n>`) naming an immutable blob of the
//!   definition as stored, keyed by its SHA-256, so an identical definition is stored once.
//!   A new revision is one transaction: the revision item (create-if-absent) and the head moved
//!   from n to n+1 (conditioned on n), so two writers never both win.
//! * Plaintext `fn::secret` values are encrypted before anything is stored, with the
//!   environment's data key (`service::secrets`, bound to `env:<org>:<id>`).
//! * Revision tags (`RTAG#<name>`) name revisions; `latest` is the head and is not stored.

pub mod access;
pub mod definition;
pub mod evaluate;
pub mod providers;
pub mod purge;
pub mod revisions;
pub mod sessions;
pub mod tags;

use serde::Serialize;

use super::item_keys;
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::{OrgName, ProjectName};
use crate::ports::{Condition, Item, MetadataStore, Query, TransactOp, Value};

/// Sort-key prefix of an organization's environments.
pub const ENV_PREFIX: &str = "ENV#";
/// Most environments one list page holds.
pub const PAGE: usize = 500;

/// The project of environments named without one (`pulumi env init name`, legacy imports).
pub const DEFAULT_PROJECT: &str = "default";

/// An environment's name within its organization, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub org: String,
    pub project: String,
    pub name: String,
}

impl EnvRef {
    /// Validates the three parts (the rules of stack names).
    pub fn parse(org: &str, project: &str, name: &str) -> Result<EnvRef> {
        OrgName::parse(org)?;
        ProjectName::parse(project)?;
        if name.is_empty()
            || name.len() > 100
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::BadRequest(
                "environment names may only contain alphanumerics, hyphens, underscores, or periods"
                    .into(),
            ));
        }
        Ok(EnvRef { org: org.into(), project: project.into(), name: name.into() })
    }

    /// `project/name`, as ranges and imports name it.
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.project, self.name)
    }

    fn sk(&self) -> String {
        format!("{ENV_PREFIX}{}/{}", self.project, self.name)
    }
}

/// An environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub id: String,
    pub at: EnvRef,
    pub created: i64,
    pub modified: i64,
    /// The newest revision.
    pub head: i64,
    pub owner: String,
    pub deletion_protected: bool,
}

impl Environment {
    /// The definition's ETag: the head revision (every change of the definition makes one).
    pub fn etag(&self) -> String {
        self.head.to_string()
    }

    /// The id whose data key seals this environment's secrets: bound to its organization and
    /// its immutable id.
    pub fn key_id(&self) -> String {
        format!("env:{}:{}", self.at.org, self.id)
    }

    fn item(&self) -> Item {
        Item::new(item_keys::org_pk(&self.at.org), self.at.sk())
            .with("id", Value::S(self.id.clone()))
            .with("project", Value::S(self.at.project.clone()))
            .with("name", Value::S(self.at.name.clone()))
            .with("created", Value::N(self.created))
            .with("modified", Value::N(self.modified))
            .with("head", Value::N(self.head))
            .with("owner", Value::S(self.owner.clone()))
            .with("deletion_protected", Value::Bool(self.deletion_protected))
    }

    fn from_item(org: &str, item: &Item) -> Result<Environment> {
        let corrupt = |what: &str| Error::internal(format!("environment item lacks {what}"));
        Ok(Environment {
            id: item.s("id").ok_or_else(|| corrupt("id"))?.to_string(),
            at: EnvRef {
                org: org.to_string(),
                project: item.s("project").ok_or_else(|| corrupt("project"))?.to_string(),
                name: item.s("name").ok_or_else(|| corrupt("name"))?.to_string(),
            },
            created: item.n("created").unwrap_or(0),
            modified: item.n("modified").unwrap_or(0),
            head: item.n("head").ok_or_else(|| corrupt("head"))?,
            owner: item.s("owner").unwrap_or_default().to_string(),
            deletion_protected: item.bool("deletion_protected").unwrap_or(false),
        })
    }

    /// The list entry (`OrgEnvironment`).
    pub fn summary(&self) -> OrgEnvironment {
        OrgEnvironment {
            organization: self.at.org.clone(),
            project: self.at.project.clone(),
            name: self.at.name.clone(),
            id: self.id.clone(),
            created: rfc3339(self.created),
            modified: rfc3339(self.modified),
            owned_by: Owner { name: self.owner.clone(), github_login: self.owner.clone() },
            settings: Protection { deletion_protected: self.deletion_protected },
        }
    }
}

/// One environment in a list (`OrgEnvironment`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OrgEnvironment {
    pub organization: String,
    pub project: String,
    pub name: String,
    pub id: String,
    pub created: String,
    pub modified: String,
    /// Who created it.
    pub owned_by: Owner,
    pub settings: Protection,
}

/// A user as lists name them (`UserInfo`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Owner {
    pub name: String,
    pub github_login: String,
}

/// `EnvironmentSettings`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Protection {
    pub deletion_protected: bool,
}

/// Unix seconds as RFC 3339.
pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(crate) fn not_found(at: &EnvRef) -> Error {
    Error::NotFound(format!("environment {}/{}/{} not found", at.org, at.project, at.name))
}

/// Reads an environment, or 404.
pub async fn get(meta: &dyn MetadataStore, at: &EnvRef) -> Result<Environment> {
    let item = meta.get(&item_keys::org_pk(&at.org), &at.sk()).await?;
    match item {
        Some(item) => Environment::from_item(&at.org, &item),
        None => Err(not_found(at)),
    }
}

/// Creates an environment at revision 1 with an empty definition; 409 if it exists.
pub async fn create(app: &App, at: &EnvRef, owner: &str) -> Result<Environment> {
    let now = app.clock.now();
    let env = Environment {
        id: super::new_id(),
        at: at.clone(),
        created: now,
        modified: now,
        head: 1,
        owner: owner.to_string(),
        deletion_protected: false,
    };
    let blob = definition::store_text(app, &env, "").await?;
    let first = revisions::Revision::new(1, blob, owner, now);
    let ops = vec![
        TransactOp::Put(env.item(), Some(Condition::NotExists)),
        TransactOp::Put(first.item(&env.id), Some(Condition::NotExists)),
    ];
    match app.ports.meta.transact(ops).await {
        Ok(()) => Ok(env),
        Err(crate::ports::MetaError::ConditionFailed) => Err(Error::Conflict(format!(
            "environment {}/{}/{} already exists",
            at.org, at.project, at.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an environment (its revisions stay unreachable); 409 while deletion-protected.
pub async fn delete(app: &App, at: &EnvRef) -> Result<()> {
    let env = get(app.ports.meta.as_ref(), at).await?;
    if env.deletion_protected {
        return Err(Error::Conflict(
            "the environment is deletion protected: turn protection off to delete it".into(),
        ));
    }
    // The environment goes and its tombstone comes in one transaction: the retention job
    // removes what stays under its id (revisions, tags, grants, definition blobs) from there.
    let ops = vec![
        TransactOp::Delete {
            pk: item_keys::org_pk(&at.org),
            sk: at.sk(),
            condition: Some(Condition::Equals("id".into(), Value::S(env.id.clone()))),
        },
        TransactOp::Put(purge::tombstone(&env, app.clock.now()), None),
    ];
    match app.ports.meta.transact(ops).await {
        Ok(()) | Err(crate::ports::MetaError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    // After the environment: a crash between leaves grants on nothing, never an environment
    // whose team grants vanished. A name made again later is a new environment (a new id).
    access::forget(app.ports.meta.as_ref(), &env).await
}

/// Sets the deletion protection flag.
pub async fn set_protection(app: &App, at: &EnvRef, protected: bool) -> Result<Environment> {
    let meta = app.ports.meta.as_ref();
    for _ in 0..8 {
        let mut env = get(meta, at).await?;
        let cond = Condition::Equals("head".into(), Value::N(env.head));
        env.deletion_protected = protected;
        match meta.put(env.item(), Some(cond)).await {
            Ok(()) => return Ok(env),
            Err(crate::ports::MetaError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict("the environment is being changed; try again".into()))
}

/// One page of an organization's environments, in project/name order, after `after` (the
/// continuation token: the last sort key of the previous page).
pub async fn list(
    meta: &dyn MetadataStore,
    org: &str,
    after: Option<&str>,
) -> Result<(Vec<Environment>, Option<String>)> {
    let mut q = Query::prefix(item_keys::org_pk(org), ENV_PREFIX, PAGE);
    q.after = after.map(|a| format!("{ENV_PREFIX}{a}"));
    let page = meta.query(q).await?;
    let envs =
        page.items.iter().map(|i| Environment::from_item(org, i)).collect::<Result<Vec<_>>>()?;
    let next = page.next.and_then(|sk| sk.strip_prefix(ENV_PREFIX).map(str::to_string));
    Ok((envs, next))
}

/// Moves the head from `env.head` to `env.head + 1` with its new revision item, in one
/// transaction; false when another writer moved it first.
pub(crate) async fn advance(
    app: &App,
    env: &Environment,
    revision: &revisions::Revision,
) -> Result<bool> {
    let mut next = env.clone();
    next.head = revision.number;
    next.modified = revision.created;
    let ops = vec![
        TransactOp::Put(
            next.item(),
            Some(
                Condition::Equals("head".into(), Value::N(env.head))
                    .and(Condition::Equals("id".into(), Value::S(env.id.clone()))),
            ),
        ),
        TransactOp::Put(revision.item(&env.id), Some(Condition::NotExists)),
    ];
    match app.ports.meta.transact(ops).await {
        Ok(()) => Ok(true),
        Err(crate::ports::MetaError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
