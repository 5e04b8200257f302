//! One version of a stack among the stack's activity (Pulumi Cloud's `…/updates/{version}/
//! summary` and `…/timeline`): the update that made it, who asked for it, and the previews run
//! on the stack since the version before it.

use super::deployments::Summary;
use super::history::{self, Entry};
use super::stacks::Stack;
use super::updates::{self, Update};
use crate::error::{Error, Result};
use crate::names::UpdateId;
use crate::ports::MetadataStore;

/// An update as the timeline shows it: its `UpdateInfo`, the update behind it when it is still
/// stored, and the stack version it made (previews: the version they previewed against).
#[derive(Debug, Clone)]
pub struct Shown {
    /// `UpdateInfo` JSON.
    pub info: serde_json::Value,
    /// The update's id.
    pub update_id: String,
    /// Who asked for it (empty when its update item is gone).
    pub author: String,
    /// The stack version.
    pub version: i64,
}

/// A version's timeline.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The update that made the version.
    pub update: Shown,
    /// The previews run after the version before it ended and before it started, oldest
    /// first.
    pub previews: Vec<Shown>,
}

/// The history entry of `version` (None: the latest; 404 when the stack has no history).
pub async fn entry(meta: &dyn MetadataStore, stack: &Stack, version: Option<i64>) -> Result<Entry> {
    match version {
        Some(version) => history::get(meta, &stack.id, version).await,
        None => history::latest(meta, &stack.id).await?.ok_or_else(|| {
            let name = format!("{}/{}/{}", stack.org, stack.project, stack.stack);
            Error::NotFound(format!("stack '{name}' has no updates"))
        }),
    }
}

/// The timeline of `version` (None: the latest).
pub async fn of(meta: &dyn MetadataStore, stack: &Stack, version: Option<i64>) -> Result<Timeline> {
    let entry = entry(meta, stack, version).await?;
    let author = match &entry.update_id {
        Some(id) => {
            match updates::get(meta, &stack.id, &UpdateId::from_stored(id.as_str())).await {
                Ok(update) => update.author,
                Err(Error::NotFound(_)) => String::new(),
                Err(e) => return Err(e),
            }
        }
        None => String::new(),
    };
    // The version previews ran against: the one before (absent for the first, or when
    // retention removed it).
    let before = match entry.version {
        1 => None,
        v => match history::get(meta, &stack.id, v - 1).await {
            Ok(before) => Some(before),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
    };
    let since = before.as_ref().and_then(|b| b.info["endTime"].as_i64()).unwrap_or(0);
    let until = entry.info["startTime"].as_i64().unwrap_or(i64::MAX);
    let previews = updates::of_stack(meta, &stack.id, |u| {
        // Strictly after: times are whole seconds, and the version before's own preview
        // may share the second its update ended in.
        u.dry_run && u.created > since && u.created <= until
    })
    .await?;
    let base = entry.version - 1;
    let base_count = before.as_ref().and_then(|b| b.info["resourceCount"].as_i64()).unwrap_or(0);
    Ok(Timeline {
        previews: previews.iter().map(|p| preview(p, base, base_count)).collect(),
        update: Shown {
            update_id: entry.update_id.clone().unwrap_or_default(),
            author,
            version: entry.version,
            info: entry.info,
        },
    })
}

fn preview(update: &Update, base: i64, resource_count: i64) -> Shown {
    Shown {
        info: history::update_info(update, base, &Summary { resource_count }),
        update_id: update.id.to_string(),
        author: update.author.clone(),
        version: base,
    }
}
