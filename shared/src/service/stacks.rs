//! Stacks: create, read, list, tag, delete. One item per stack under its organization.

use std::collections::BTreeMap;

use base64::Engine;

use super::access::{OrgAccess, StackPermission};
use super::identity::Principal;
use super::item_keys;
use super::optimistic::{retry_on_conflict, written};
use crate::error::{Error, Result};
use crate::names::{OrgName, ProjectName, StackName, StackRef};
use crate::names::{StackId, UpdateId};
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Value};

/// A stack as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// Immutable id: secrets and history hang off it, so renames keep them.
    pub id: StackId,
    /// Organization, project and stack name.
    pub org: String,
    /// Project.
    pub project: String,
    /// Stack.
    pub stack: String,
    /// Tags (complete set).
    pub tags: BTreeMap<String, String>,
    /// Current version; 0 until the first update.
    pub version: i64,
    /// End of the last update (Unix seconds).
    pub last_update: Option<i64>,
    /// How the update that made the current version ended (`succeeded` or `failed`); None
    /// before any, or for stacks last updated before this was kept.
    pub last_result: Option<String>,
    /// Resources in the current deployment.
    pub resource_count: Option<i64>,
    /// The running update, if any.
    pub active_update: Option<UpdateId>,
    /// Blob key of the current deployment (None until the first update).
    pub deployment_key: Option<String>,
    /// Optimistic-concurrency revision of the item.
    pub rev: i64,
    /// The user who created the stack (admin of it); None for stacks made by organization or
    /// team tokens (logins of those could collide with a user's name) or before this was kept.
    pub creator: Option<String>,
}

impl Stack {
    pub(crate) fn from_item(item: &Item) -> Result<Stack> {
        let corrupt = |what: &str| {
            Error::internal(format!("stack item {} {} lacks {what}", item.pk, item.sk))
        };
        let tags = match item.s("tags") {
            Some(json) => serde_json::from_str(json).map_err(|_| corrupt("valid tags"))?,
            None => BTreeMap::new(),
        };
        Ok(Stack {
            id: StackId::from_stored(item.s("id").ok_or_else(|| corrupt("id"))?),
            org: item.s("org").ok_or_else(|| corrupt("org"))?.to_string(),
            project: item.s("project").ok_or_else(|| corrupt("project"))?.to_string(),
            stack: item.s("stack").ok_or_else(|| corrupt("stack"))?.to_string(),
            tags,
            version: item.n("version").unwrap_or(0),
            last_update: item.n("last_update"),
            last_result: item.s("last_result").map(str::to_string),
            resource_count: item.n("resource_count"),
            active_update: item.s("active_update").map(UpdateId::from_stored),
            deployment_key: item.s("deployment_key").map(str::to_string),
            rev: item.n("rev").unwrap_or(0),
            creator: item.s("creator").map(str::to_string),
        })
    }

    pub(crate) fn to_item(&self) -> Result<Item> {
        let tags =
            serde_json::to_string(&self.tags).map_err(|e| Error::caused("JSON encoding", e))?;
        let mut item = Item::new(
            item_keys::org_pk(&self.org),
            item_keys::stack_sk(&self.project, &self.stack),
        )
        .with("id", Value::S(self.id.to_string()))
        .with("org", Value::S(self.org.clone()))
        .with("project", Value::S(self.project.clone()))
        .with("stack", Value::S(self.stack.clone()))
        .with("tags", Value::S(tags))
        .with("version", Value::N(self.version))
        .with("rev", Value::N(self.rev));
        if let Some(t) = self.last_update {
            item.set("last_update", Value::N(t));
        }
        if let Some(r) = &self.last_result {
            item.set("last_result", Value::S(r.clone()));
        }
        if let Some(n) = self.resource_count {
            item.set("resource_count", Value::N(n));
        }
        if let Some(u) = &self.active_update {
            item.set("active_update", Value::S(u.to_string()));
        }
        if let Some(k) = &self.deployment_key {
            item.set("deployment_key", Value::S(k.clone()));
        }
        if let Some(c) = &self.creator {
            item.set("creator", Value::S(c.clone()));
        }
        Ok(item)
    }

    /// A transactional write of this stack that succeeds only if the stored item still has
    /// revision `self.rev` (the one read); the written item gets the next revision.
    pub(crate) fn put_op(&self) -> Result<TransactOp> {
        let mut next = self.clone();
        next.rev = self.rev + 1;
        Ok(TransactOp::Put(
            next.to_item()?,
            Some(Condition::Equals("rev".into(), Value::N(self.rev))),
        ))
    }

    /// The stack's reference (names).
    pub fn stack_ref(&self) -> Result<StackRef> {
        Ok(StackRef {
            org: OrgName::parse(&self.org)?,
            project: ProjectName::parse(&self.project)?,
            stack: StackName::parse(&self.stack)?,
        })
    }

    /// The API shape of the stack.
    pub fn to_api(&self) -> crate::apitype::Stack {
        crate::apitype::Stack {
            id: self.id.to_string(),
            org_name: self.org.clone(),
            project_name: self.project.clone(),
            stack_name: self.stack.clone(),
            current_operation: None,
            active_update: self.active_update.as_deref().unwrap_or_default().to_string(),
            tags: self.tags.clone(),
            version: self.version,
        }
    }

    /// The `stack ls` shape of the stack.
    pub fn to_summary(&self) -> crate::apitype::StackSummary {
        crate::apitype::StackSummary {
            id: self.id.to_string(),
            org_name: self.org.clone(),
            project_name: self.project.clone(),
            stack_name: self.stack.clone(),
            // 0 tells the CLI an update is in progress (docs/PROTOCOL-NOTES.md, Stacks).
            last_update: if self.active_update.is_some() { Some(0) } else { self.last_update },
            resource_count: self.resource_count,
        }
    }
}

/// 404 for a stack that does not exist, or that the caller may not see.
pub fn not_found(r: &StackRef) -> Error {
    Error::NotFound(format!("stack '{r}' not found"))
}

/// Creates a stack; 409 "... already exists" when the name is taken.
pub async fn create(
    meta: &dyn MetadataStore,
    r: &StackRef,
    tags: BTreeMap<String, String>,
    creator: Option<&str>,
) -> Result<Stack> {
    crate::names::validate_tags(&tags)?;
    let stack = Stack {
        id: StackId::generate(),
        org: r.org.to_string(),
        project: r.project.to_string(),
        stack: r.stack.to_string(),
        tags,
        version: 0,
        last_update: None,
        last_result: None,
        resource_count: None,
        active_update: None,
        deployment_key: None,
        rev: 1,
        creator: creator.map(str::to_string),
    };
    match meta.put(stack.to_item()?, Some(Condition::NotExists)).await {
        Ok(()) => Ok(stack),
        // The CLI recognises StackAlreadyExistsError by "already exists" in a 409 message.
        Err(MetaError::ConditionFailed) => {
            Err(Error::Conflict(format!("stack '{r}' already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads a stack; 404 when absent.
pub async fn get(meta: &dyn MetadataStore, r: &StackRef) -> Result<Stack> {
    let item = meta
        .get(
            &item_keys::org_pk(r.org.as_str()),
            &item_keys::stack_sk(r.project.as_str(), r.stack.as_str()),
        )
        .await?
        .ok_or_else(|| not_found(r))?;
    Stack::from_item(&item)
}

/// Whether any stack of the project exists in the organization.
pub async fn project_exists(
    meta: &dyn MetadataStore,
    org: &OrgName,
    project: &ProjectName,
) -> Result<bool> {
    let page = meta
        .query(Query::prefix(
            item_keys::org_pk(org.as_str()),
            item_keys::project_stacks_prefix(project.as_str()),
            1,
        ))
        .await?;
    Ok(!page.items.is_empty())
}

/// Applies `change` to the stack with optimistic concurrency, retrying on concurrent writes.
async fn modify<F>(meta: &dyn MetadataStore, r: &StackRef, mut change: F) -> Result<Stack>
where
    F: FnMut(&mut Stack) -> Result<()>,
{
    retry_on_conflict!(8, async {
        let mut stack = get(meta, r).await?;
        let seen = stack.rev;
        change(&mut stack)?;
        stack.rev = seen + 1;
        let cond = Condition::Equals("rev".into(), Value::N(seen));
        written(meta.put(stack.to_item()?, Some(cond)).await, stack)
    })?
    .ok_or_else(|| contended(r))
}

/// Replaces the stack's tags with the given complete set.
pub async fn replace_tags(
    meta: &dyn MetadataStore,
    r: &StackRef,
    tags: BTreeMap<String, String>,
) -> Result<Stack> {
    crate::names::validate_tags(&tags)?;
    modify(meta, r, |s| {
        s.tags = tags.clone();
        Ok(())
    })
    .await
}

/// Deletes a stack. Without `force`, a stack that still has resources, or whose update is
/// running, is kept (400 with the exact message the CLI recognises, or 409). Returns the stack
/// as it was.
pub async fn delete(
    meta: &dyn MetadataStore,
    r: &StackRef,
    force: bool,
    now: i64,
) -> Result<Stack> {
    retry_on_conflict!(8, async {
        let stack = get(meta, r).await?;
        if !force {
            if stack.resource_count.unwrap_or(0) > 0 {
                // The CLI matches this exact text to suggest `--force`.
                return Err(Error::BadRequest("Stack still contains resources.".into()));
            }
            if super::updates::live_update(meta, &stack, now).await?.is_some() {
                return Err(Error::Conflict(format!("an update of stack '{r}' is in progress")));
            }
        }
        let cond = Condition::Equals("rev".into(), Value::N(stack.rev));
        let (pk, sk) =
            (item_keys::org_pk(&stack.org), item_keys::stack_sk(&stack.project, &stack.stack));
        written(meta.delete(&pk, &sk, Some(cond)).await, stack)
    })?
    .ok_or_else(|| contended(r))
}

fn contended(r: &StackRef) -> Error {
    Error::Conflict(format!("stack '{r}' is being changed concurrently, try again"))
}

/// Filters of `GET /api/user/stacks`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this organization.
    pub organization: Option<String>,
    /// Only this project.
    pub project: Option<String>,
    /// Only stacks with this tag...
    pub tag_name: Option<String>,
    /// ...with this value (any value when absent).
    pub tag_value: Option<String>,
}

/// Stacks read from the store per page.
pub const LIST_PAGE: usize = 100;

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    /// Organization being listed.
    o: String,
    /// Sort key to continue after.
    a: Option<String>,
}

fn encode_cursor(c: &Cursor) -> Result<String> {
    let json = serde_json::to_vec(c).map_err(|e| Error::caused("JSON encoding", e))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(token: &str) -> Result<Cursor> {
    let bad = || Error::BadRequest("invalid continuationToken".into());
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    serde_json::from_slice(&json).map_err(|_| bad())
}

/// One page of the stacks visible to `user` (those of the organizations they belong to), in
/// (organization, project, stack) order, and the token for the next page.
pub async fn list(
    meta: &dyn MetadataStore,
    principal: &Principal,
    filter: &ListFilter,
    continuation: Option<&str>,
) -> Result<(Vec<Stack>, Option<String>)> {
    let mut orgs: Vec<String> = super::identity::principal_orgs(meta, principal)
        .await?
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    if let Some(only) = &filter.organization {
        orgs.retain(|o| o == only);
    }
    let cursor = continuation.map(decode_cursor).transpose()?;
    let start = match &cursor {
        Some(c) => match orgs.iter().position(|o| *o == c.o) {
            Some(i) => i,
            None => return Ok((vec![], None)),
        },
        None => 0,
    };
    let Some(org) = orgs.get(start) else { return Ok((vec![], None)) };
    let prefix = match &filter.project {
        Some(p) => item_keys::project_stacks_prefix(p),
        None => item_keys::STACK_PREFIX.to_string(),
    };
    let mut query = Query::prefix(item_keys::org_pk(org), prefix, LIST_PAGE);
    query.after = cursor.and_then(|c| c.a);
    let page = meta.query(query).await?;
    let mut stacks = Vec::with_capacity(page.items.len());
    let mut access = OrgAccess::resolve(meta, principal, org).await?;
    for item in &page.items {
        let stack = Stack::from_item(item)?;
        // Stacks the caller may not read are left out, as if they did not exist.
        let visible = access.stack_permission(meta, &stack, StackPermission::Read).await?;
        if visible == StackPermission::None {
            continue;
        }
        let tag_ok = match (&filter.tag_name, &filter.tag_value) {
            (None, _) => true,
            (Some(name), None) => stack.tags.contains_key(name),
            (Some(name), Some(value)) => stack.tags.get(name) == Some(value),
        };
        if tag_ok {
            stacks.push(stack);
        }
    }
    let next = match page.next {
        Some(after) => Some(Cursor { o: org.clone(), a: Some(after) }),
        None => orgs.get(start + 1).map(|o| Cursor { o: o.clone(), a: None }),
    };
    Ok((stacks, next.as_ref().map(encode_cursor).transpose()?))
}
