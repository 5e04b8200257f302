//! Environment tags: free key/value metadata (`EnvironmentTag`), listed as a map by name.

use serde::Serialize;

use super::{get, rfc3339, EnvRef};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, Query, Value};

const PREFIX: &str = "TAG#";
/// Most tags one environment may have.
pub const MAX_TAGS: usize = 500;

/// A tag (`EnvironmentTag`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Tag {
    pub id: String,
    pub name: String,
    pub value: String,
    pub created: String,
    pub modified: String,
    pub editor_login: String,
    pub editor_name: String,
}

fn pk(env_id: &str) -> String {
    crate::service::item_keys::env_id_pk(env_id)
}

fn from_item(item: &Item) -> Option<Tag> {
    Some(Tag {
        id: item.s("id")?.to_string(),
        name: item.s("name")?.to_string(),
        value: item.s("value").unwrap_or_default().to_string(),
        created: rfc3339(item.n("created").unwrap_or(0)),
        modified: rfc3339(item.n("modified").unwrap_or(0)),
        editor_login: item.s("editor").unwrap_or_default().to_string(),
        editor_name: item.s("editor").unwrap_or_default().to_string(),
    })
}

fn check(name: &str, value: &str) -> Result<()> {
    if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(Error::BadRequest("a tag name has 1 to 100 characters, no '/'".into()));
    }
    if value.len() > 1000 {
        return Err(Error::BadRequest("a tag value has at most 1000 characters".into()));
    }
    Ok(())
}

/// Every tag of the environment, by name.
pub async fn list(app: &App, at: &EnvRef) -> Result<Vec<Tag>> {
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    let page = meta.query(Query::prefix(pk(&env.id), PREFIX, MAX_TAGS)).await?;
    Ok(page.items.iter().filter_map(from_item).collect())
}

/// One tag, or 404.
pub async fn one(app: &App, at: &EnvRef, name: &str) -> Result<Tag> {
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    let item = meta.get(&pk(&env.id), &format!("{PREFIX}{name}")).await?;
    item.as_ref()
        .and_then(from_item)
        .ok_or_else(|| Error::NotFound(format!("tag {name:?} not found")))
}

/// Creates a tag (409 if it exists).
pub async fn create(app: &App, at: &EnvRef, name: &str, value: &str, editor: &str) -> Result<Tag> {
    check(name, value)?;
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    let now = app.clock.now();
    let item = Item::new(pk(&env.id), format!("{PREFIX}{name}"))
        .with("id", Value::S(crate::service::new_id()))
        .with("name", Value::S(name.to_string()))
        .with("value", Value::S(value.to_string()))
        .with("created", Value::N(now))
        .with("modified", Value::N(now))
        .with("editor", Value::S(editor.to_string()));
    match meta.put(item.clone(), Some(Condition::NotExists)).await {
        Ok(()) => from_item(&item).ok_or_else(|| Error::internal("tag item incomplete")),
        Err(MetaError::ConditionFailed) => Err(Error::Conflict(format!("tag {name:?} exists"))),
        Err(e) => Err(e.into()),
    }
}

/// Renames and/or changes a tag (empty new name or value: keep the current one).
pub async fn update(
    app: &App,
    at: &EnvRef,
    name: &str,
    new_name: &str,
    new_value: &str,
    editor: &str,
) -> Result<Tag> {
    let meta = app.ports.meta.as_ref();
    let current = one(app, at, name).await?;
    let env = get(meta, at).await?;
    let name_to = if new_name.is_empty() { name } else { new_name };
    let value_to = if new_value.is_empty() { current.value.as_str() } else { new_value };
    check(name_to, value_to)?;
    let old_sk = format!("{PREFIX}{name}");
    let stored = meta
        .get(&pk(&env.id), &old_sk)
        .await?
        .ok_or_else(|| Error::NotFound(format!("tag {name:?} not found")))?;
    let item = Item::new(pk(&env.id), format!("{PREFIX}{name_to}"))
        .with("id", Value::S(current.id.clone()))
        .with("name", Value::S(name_to.to_string()))
        .with("value", Value::S(value_to.to_string()))
        .with("created", Value::N(stored.n("created").unwrap_or(0)))
        .with("modified", Value::N(app.clock.now()))
        .with("editor", Value::S(editor.to_string()));
    let mut ops = vec![];
    if name_to == name {
        ops.push(crate::ports::TransactOp::Put(item.clone(), Some(Condition::Exists)));
    } else {
        ops.push(crate::ports::TransactOp::Delete {
            pk: pk(&env.id),
            sk: old_sk,
            condition: Some(Condition::Exists),
        });
        ops.push(crate::ports::TransactOp::Put(item.clone(), Some(Condition::NotExists)));
    }
    match meta.transact(ops).await {
        Ok(()) => from_item(&item).ok_or_else(|| Error::internal("tag item incomplete")),
        Err(MetaError::ConditionFailed) => {
            Err(Error::Conflict(format!("tag {name_to:?} exists or {name:?} changed")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes a tag (404 when absent).
pub async fn delete(app: &App, at: &EnvRef, name: &str) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    match meta.delete(&pk(&env.id), &format!("{PREFIX}{name}"), Some(Condition::Exists)).await {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => Err(Error::NotFound(format!("tag {name:?} not found"))),
        Err(e) => Err(e.into()),
    }
}
