//! Removing what a deleted environment leaves under its id: revisions, revision tags,
//! environment tags and team grants (`ENV#<id>`), and its definition blobs (`esc/<id>/`).
//!
//! Deleting an environment writes a tombstone (`SYS#ENVGONE` / `<org>#<id>`) in the same
//! transaction that removes it, so nothing is missed after a crash; the retention job works
//! through the tombstones, a bounded number per run, and removes each only once everything
//! under its id is gone. Every step is idempotent: a run that stops part-way is finished by
//! the next. Open sessions are not touched: they are sealed apart and expire on their own.

use super::access;
use super::{EnvRef, Environment};
use crate::app::App;
use crate::error::Result;
use crate::ports::{Item, Query, Value};
use crate::service::access::query_all;
use crate::service::item_keys;

/// Partition of the tombstones of deleted environments.
pub const GONE_PK: &str = "SYS#ENVGONE";

/// The tombstone of `env`, deleted at `now`.
pub fn tombstone(env: &Environment, now: i64) -> Item {
    Item::new(GONE_PK, format!("{}#{}", env.at.org, env.id))
        .with("org", Value::S(env.at.org.clone()))
        .with("id", Value::S(env.id.clone()))
        .with("project", Value::S(env.at.project.clone()))
        .with("name", Value::S(env.at.name.clone()))
        .with("deleted", Value::N(now))
}

/// Purges up to `budget` deleted environments; returns how many were purged whole.
pub async fn run(app: &App, budget: usize) -> Result<usize> {
    let meta = app.ports.meta.as_ref();
    let page = meta.query(Query::prefix(GONE_PK, "", budget.max(1))).await?;
    let mut purged = 0;
    for stone in page.items {
        let (Some(org), Some(id)) = (stone.s("org"), stone.s("id")) else {
            // Not ours to read: drop it rather than trip over it on every run.
            meta.delete(&stone.pk, &stone.sk, None).await?;
            continue;
        };
        let env = Environment {
            id: id.to_string(),
            at: EnvRef {
                org: org.to_string(),
                project: stone.s("project").unwrap_or_default().to_string(),
                name: stone.s("name").unwrap_or_default().to_string(),
            },
            created: 0,
            modified: 0,
            head: 0,
            owner: String::new(),
            deletion_protected: false,
        };
        purge(app, &env).await?;
        meta.delete(&stone.pk, &stone.sk, None).await?;
        purged += 1;
    }
    Ok(purged)
}

/// Blobs first, then the grants (both halves), then the rest of the items.
async fn purge(app: &App, env: &Environment) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    crate::service::retention::delete_prefix(app, &format!("esc/{}/", env.id)).await?;
    access::forget(meta, env).await?;
    let pk = item_keys::env_id_pk(&env.id);
    for item in query_all(meta, Query::prefix(pk, "", 100)).await? {
        meta.delete(&item.pk, &item.sk, None).await?;
    }
    Ok(())
}
