//! Stack history: one item per stack version (`UpdateInfo` plus a pointer to that version's
//! deployment), under the stack's immutable id.

use serde_json::{json, Value as Json};

use super::deployments::Summary;
use super::item_keys;
use super::updates::Update;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, SortKey, TransactOp, Value};

/// One history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Stack version.
    pub version: i64,
    /// `UpdateInfo` JSON.
    pub info: Json,
    /// Blob key of this version's deployment (None: the empty deployment).
    pub deployment_key: Option<String>,
    /// The update that made it (None in entries written before it was recorded).
    pub update_id: Option<String>,
}

fn parse_json(s: &str, fallback: Json) -> Json {
    serde_json::from_str(s).unwrap_or(fallback)
}

/// The `UpdateInfo` of an ended update that produced `version` (docs/PROTOCOL-NOTES.md, Update
/// lifecycle).
pub fn update_info(update: &Update, version: i64, summary: &Summary) -> Json {
    let mut info = json!({
        "kind": update.kind,
        "startTime": update.started.unwrap_or(update.created),
        "message": update.message,
        "environment": parse_json(&update.environment, json!({})),
        "config": parse_json(&update.config, json!({})),
        "result": update.status.result(),
        "endTime": update.ended.unwrap_or(0),
        "version": version,
        "resourceCount": summary.resource_count,
    });
    if let Some(rc) = update.resource_changes.as_deref() {
        info["resourceChanges"] = parse_json(rc, json!({}));
    }
    info
}

/// The write of a new history entry; fails if the version exists already.
pub fn entry_op(
    update: &Update,
    version: i64,
    deployment_key: Option<&str>,
    summary: &Summary,
) -> Result<TransactOp> {
    let info = update_info(update, version, summary);
    let mut item =
        Item::new(item_keys::stack_id_pk(&update.stack_id), item_keys::version_sk(version))
            .with("version", Value::N(version))
            .with("update_id", Value::S(update.id.to_string()))
            .with("info", Value::S(info.to_string()));
    if let Some(k) = deployment_key {
        item.set("deployment_key", Value::S(k.to_string()));
    }
    Ok(TransactOp::Put(item, Some(Condition::NotExists)))
}

/// A history item as read (for queries of history made elsewhere).
pub(crate) fn from_item(item: &Item) -> Result<Entry> {
    let info = item.s("info").and_then(|s| serde_json::from_str(s).ok()).ok_or_else(|| {
        Error::internal(format!("history item {} {} is corrupt", item.pk, item.sk))
    })?;
    Ok(Entry {
        version: item.n("version").unwrap_or(0),
        info,
        deployment_key: item.s("deployment_key").map(str::to_string),
        update_id: item.s("update_id").map(str::to_string),
    })
}

/// One version of a stack; 404 when absent.
pub async fn get(meta: &dyn MetadataStore, stack_id: &str, version: i64) -> Result<Entry> {
    let item = meta
        .get(&item_keys::stack_id_pk(stack_id), &item_keys::version_sk(version))
        .await?
        .ok_or_else(|| Error::NotFound(format!("stack version {version} not found")))?;
    from_item(&item)
}

/// The newest entry, if any.
pub async fn latest(meta: &dyn MetadataStore, stack_id: &str) -> Result<Option<Entry>> {
    let page = meta
        .query(Query {
            pk: item_keys::stack_id_pk(stack_id),
            sk: SortKey::BeginsWith(item_keys::VERSION_PREFIX.into()),
            ascending: false,
            limit: 1,
            after: None,
        })
        .await?;
    page.items.first().map(from_item).transpose()
}

/// A page of history, newest first: `page` counts from 1; `page_size` None means everything.
pub async fn list(
    meta: &dyn MetadataStore,
    stack_id: &str,
    page: usize,
    page_size: Option<usize>,
) -> Result<Vec<Entry>> {
    // Client-chosen numbers: a page past the end (however far) is empty, never an overflow.
    let skip = page_size.map(|s| s.saturating_mul(page.saturating_sub(1))).unwrap_or(0);
    let want = page_size.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut query = Query {
        pk: item_keys::stack_id_pk(stack_id),
        sk: SortKey::BeginsWith(item_keys::VERSION_PREFIX.into()),
        ascending: false,
        limit: 100,
        after: None,
    };
    loop {
        let result = meta.query(query.clone()).await?;
        for item in &result.items {
            if seen >= skip && out.len() < want {
                out.push(from_item(item)?);
            }
            seen += 1;
        }
        match result.next {
            Some(next) if out.len() < want => query.after = Some(next),
            _ => return Ok(out),
        }
    }
}
