//! Revisions of an environment and the tags that name them. Revisions are listed newest first
//! with an exclusive `before` (0: from the newest), as the CLI pages them; a retracted revision
//! stays listed and reads as its replacement.

use serde::Serialize;

use super::{get, rfc3339, EnvRef, Environment};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, SortKey, Value};

const REV_PREFIX: &str = "REV#";
const TAG_PREFIX: &str = "RTAG#";
/// The tag every environment has: its newest revision.
pub const LATEST: &str = "latest";
/// Most revisions or tags in one page.
pub const MAX_PAGE: usize = 500;

fn pk(env_id: &str) -> String {
    crate::service::item_keys::env_id_pk(env_id)
}

fn rev_sk(n: i64) -> String {
    format!("{REV_PREFIX}{n:010}")
}

/// A revision of the definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: i64,
    /// The definition blob's key.
    pub blob: String,
    pub created: i64,
    pub creator: String,
    pub retracted: Option<Retraction>,
}

/// A revision withdrawn in favour of another.
#[derive(Debug, Clone, PartialEq)]
pub struct Retraction {
    pub replacement: i64,
    pub at: i64,
    pub by: String,
    pub reason: String,
}

impl Revision {
    pub(super) fn new(number: i64, blob: String, creator: &str, now: i64) -> Revision {
        Revision { number, blob, created: now, creator: creator.to_string(), retracted: None }
    }

    pub(super) fn item(&self, env_id: &str) -> Item {
        let mut item = Item::new(pk(env_id), rev_sk(self.number))
            .with("number", Value::N(self.number))
            .with("blob", Value::S(self.blob.clone()))
            .with("created", Value::N(self.created))
            .with("creator", Value::S(self.creator.clone()));
        if let Some(r) = &self.retracted {
            item = item
                .with("retracted_replacement", Value::N(r.replacement))
                .with("retracted_at", Value::N(r.at))
                .with("retracted_by", Value::S(r.by.clone()))
                .with("retracted_reason", Value::S(r.reason.clone()));
        }
        item
    }

    fn from_item(item: &Item) -> Result<Revision> {
        let corrupt = |what: &str| Error::internal(format!("revision item lacks {what}"));
        let retracted = item.n("retracted_replacement").map(|replacement| Retraction {
            replacement,
            at: item.n("retracted_at").unwrap_or(0),
            by: item.s("retracted_by").unwrap_or_default().to_string(),
            reason: item.s("retracted_reason").unwrap_or_default().to_string(),
        });
        Ok(Revision {
            number: item.n("number").ok_or_else(|| corrupt("number"))?,
            blob: item.s("blob").ok_or_else(|| corrupt("blob"))?.to_string(),
            created: item.n("created").unwrap_or(0),
            creator: item.s("creator").unwrap_or_default().to_string(),
            retracted,
        })
    }
}

/// A revision as listed (`EnvironmentRevision`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RevisionInfo {
    pub number: i64,
    pub created: String,
    pub creator_login: String,
    pub creator_name: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retracted: Option<RetractedInfo>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RetractedInfo {
    pub replacement: i64,
    pub at: String,
    pub by_login: String,
    pub by_name: String,
    pub reason: String,
}

/// A revision tag (`EnvironmentRevisionTag`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RevisionTag {
    pub name: String,
    pub revision: i64,
    pub created: String,
    pub modified: String,
    pub editor_login: String,
    pub editor_name: String,
}

/// Reads revision `n`, or 404.
pub async fn revision(meta: &dyn MetadataStore, env: &Environment, n: i64) -> Result<Revision> {
    match meta.get(&pk(&env.id), &rev_sk(n)).await? {
        Some(item) => Revision::from_item(&item),
        None => Err(Error::NotFound(format!("revision {n} not found"))),
    }
}

/// The revision a version names: a number, a tag (`latest` the head), or none (the head).
pub async fn resolve(
    meta: &dyn MetadataStore,
    env: &Environment,
    version: Option<&str>,
) -> Result<i64> {
    let Some(v) = version.filter(|v| !v.is_empty()) else { return Ok(env.head) };
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        let n: i64 =
            v.parse().map_err(|_| Error::BadRequest(format!("invalid revision number {v:?}")))?;
        if n < 1 || n > env.head {
            return Err(Error::NotFound(format!("revision {n} not found")));
        }
        return Ok(n);
    }
    Ok(tag(meta, env, v).await?.revision)
}

/// A page of revisions, newest first: numbers below `before` (0: from the newest).
pub async fn list(
    meta: &dyn MetadataStore,
    env: &Environment,
    before: i64,
    count: usize,
) -> Result<Vec<RevisionInfo>> {
    let top = if before <= 0 { env.head } else { (before - 1).min(env.head) };
    if top < 1 || count == 0 {
        return Ok(Vec::new());
    }
    let q = Query {
        pk: pk(&env.id),
        sk: SortKey::Between(rev_sk(1), rev_sk(top)),
        ascending: false,
        limit: count.min(MAX_PAGE),
        after: None,
    };
    let page = meta.query(q).await?;
    let tags = all_tags(meta, env).await?;
    page.items
        .iter()
        .map(|item| {
            let r = Revision::from_item(item)?;
            Ok(RevisionInfo {
                number: r.number,
                created: rfc3339(r.created),
                creator_login: r.creator.clone(),
                creator_name: r.creator.clone(),
                tags: tags
                    .iter()
                    .filter(|t| t.revision == r.number)
                    .map(|t| t.name.clone())
                    .collect(),
                retracted: r.retracted.map(|x| RetractedInfo {
                    replacement: x.replacement,
                    at: rfc3339(x.at),
                    by_login: x.by.clone(),
                    by_name: x.by,
                    reason: x.reason,
                }),
            })
        })
        .collect()
}

/// Retracts a revision in favour of `replacement` (default: the newest revision before it
/// that is not retracted). The head cannot be retracted.
pub async fn retract(
    app: &App,
    at: &EnvRef,
    version: &str,
    replacement: Option<i64>,
    reason: String,
    by: &str,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    let n = resolve(meta, &env, Some(version)).await?;
    if n == env.head {
        return Err(Error::BadRequest("the latest revision cannot be retracted".into()));
    }
    let mut rev = revision(meta, &env, n).await?;
    let replacement = match replacement {
        Some(r) if r == n || r < 1 || r > env.head => {
            return Err(Error::BadRequest(format!("revision {r} cannot replace revision {n}")));
        }
        Some(r) => r,
        None => {
            let mut candidate = n - 1;
            loop {
                if candidate < 1 {
                    return Err(Error::BadRequest(format!(
                        "revision {n} has no earlier revision to fall back to; name a replacement"
                    )));
                }
                if revision(meta, &env, candidate).await?.retracted.is_none() {
                    break candidate;
                }
                candidate -= 1;
            }
        }
    };
    let target = revision(meta, &env, replacement).await?;
    if target.retracted.is_some() {
        return Err(Error::BadRequest(format!("revision {replacement} is itself retracted")));
    }
    rev.retracted =
        Some(Retraction { replacement, at: app.clock.now(), by: by.to_string(), reason });
    meta.put(rev.item(&env.id), Some(Condition::Exists)).await?;
    Ok(())
}

/// The blob of the definition revision `n` reads as (a retracted one reads as its
/// replacement).
pub async fn readable_blob(meta: &dyn MetadataStore, env: &Environment, n: i64) -> Result<String> {
    let rev = revision(meta, env, n).await?;
    match rev.retracted {
        Some(r) => Ok(revision(meta, env, r.replacement).await?.blob),
        None => Ok(rev.blob),
    }
}

fn tag_from_item(item: &Item) -> Option<RevisionTag> {
    Some(RevisionTag {
        name: item.s("name")?.to_string(),
        revision: item.n("revision")?,
        created: rfc3339(item.n("created").unwrap_or(0)),
        modified: rfc3339(item.n("modified").unwrap_or(0)),
        editor_login: item.s("editor").unwrap_or_default().to_string(),
        editor_name: item.s("editor").unwrap_or_default().to_string(),
    })
}

fn latest(env: &Environment) -> RevisionTag {
    RevisionTag {
        name: LATEST.into(),
        revision: env.head,
        created: rfc3339(env.created),
        modified: rfc3339(env.modified),
        editor_login: env.owner.clone(),
        editor_name: env.owner.clone(),
    }
}

/// Every revision tag, `latest` included, by name.
async fn all_tags(meta: &dyn MetadataStore, env: &Environment) -> Result<Vec<RevisionTag>> {
    let mut out = vec![latest(env)];
    let mut after = None;
    loop {
        let mut q = Query::prefix(pk(&env.id), TAG_PREFIX, MAX_PAGE);
        q.after = after;
        let page = meta.query(q).await?;
        out.extend(page.items.iter().filter_map(tag_from_item));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Revision tags named after `after`, by name.
pub async fn tags(
    meta: &dyn MetadataStore,
    env: &Environment,
    after: &str,
    count: usize,
) -> Result<Vec<RevisionTag>> {
    let all = all_tags(meta, env).await?;
    Ok(all.into_iter().filter(|t| t.name.as_str() > after).take(count.clamp(1, MAX_PAGE)).collect())
}

/// One revision tag, or 404.
pub async fn tag(meta: &dyn MetadataStore, env: &Environment, name: &str) -> Result<RevisionTag> {
    if name == LATEST {
        return Ok(latest(env));
    }
    let item = meta.get(&pk(&env.id), &format!("{TAG_PREFIX}{name}")).await?;
    item.as_ref()
        .and_then(tag_from_item)
        .ok_or_else(|| Error::NotFound(format!("revision tag {name:?} not found")))
}

fn check_tag_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::BadRequest(
            "a revision tag name has letters, digits, '-', '_' or '.', and does not start with a digit"
                .into(),
        ));
    }
    if name == LATEST {
        return Err(Error::BadRequest("the latest tag always names the newest revision".into()));
    }
    Ok(())
}

/// Creates (`create`) or moves a revision tag to `revision` (default: the head).
pub async fn set_tag(
    app: &App,
    at: &EnvRef,
    name: &str,
    revision_number: Option<i64>,
    create: bool,
    editor: &str,
) -> Result<RevisionTag> {
    check_tag_name(name)?;
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    let n = revision_number.unwrap_or(env.head);
    revision(meta, &env, n).await?;
    let now = app.clock.now();
    let sk = format!("{TAG_PREFIX}{name}");
    let existing = meta.get(&pk(&env.id), &sk).await?;
    let created = match (&existing, create) {
        (Some(_), true) => return Err(Error::Conflict(format!("revision tag {name:?} exists"))),
        (None, false) => return Err(Error::NotFound(format!("revision tag {name:?} not found"))),
        (Some(item), false) => item.n("created").unwrap_or(now),
        (None, true) => now,
    };
    let item = Item::new(pk(&env.id), sk)
        .with("name", Value::S(name.to_string()))
        .with("revision", Value::N(n))
        .with("created", Value::N(created))
        .with("modified", Value::N(now))
        .with("editor", Value::S(editor.to_string()));
    let cond = if create { Condition::NotExists } else { Condition::Exists };
    match meta.put(item.clone(), Some(cond)).await {
        Ok(()) => {}
        Err(crate::ports::MetaError::ConditionFailed) if create => {
            return Err(Error::Conflict(format!("revision tag {name:?} exists")));
        }
        Err(crate::ports::MetaError::ConditionFailed) => {
            return Err(Error::NotFound(format!("revision tag {name:?} not found")));
        }
        Err(e) => return Err(e.into()),
    }
    tag_from_item(&item).ok_or_else(|| Error::internal("revision tag item incomplete"))
}

/// Deletes a revision tag (404 when absent; `latest` cannot be deleted).
pub async fn delete_tag(app: &App, at: &EnvRef, name: &str) -> Result<()> {
    check_tag_name(name)?;
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    match meta.delete(&pk(&env.id), &format!("{TAG_PREFIX}{name}"), Some(Condition::Exists)).await {
        Ok(()) => Ok(()),
        Err(crate::ports::MetaError::ConditionFailed) => {
            Err(Error::NotFound(format!("revision tag {name:?} not found")))
        }
        Err(e) => Err(e.into()),
    }
}
