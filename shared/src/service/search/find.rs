//! A member's search of their organization: the index as of its last indexing run, limited to
//! the stacks the caller may read, so that no result, count or facet shows what they cannot.

use std::collections::HashSet;

use super::index::OrgIndex;
use super::matcher::{Answer, Request};
use crate::app::App;
use crate::error::Result;
use crate::service::access::OrgAccess;
use crate::service::identity::Principal;

/// The stack ids the caller may read, or None when that is every stack.
async fn readable(app: &App, access: &mut OrgAccess, org: &str) -> Result<Option<HashSet<String>>> {
    let meta = app.ports.meta.as_ref();
    if access.reads_every_stack(meta).await? {
        return Ok(None);
    }
    let mut ids = HashSet::new();
    for stack in super::indexer::stacks_of(app, org).await? {
        if access.may_read(meta, &stack).await? {
            ids.insert(stack.id.to_string());
        }
    }
    Ok(Some(ids))
}

/// Answers `request` (whose `stacks` is replaced by what the caller may read) over `org`'s
/// index; an organization never indexed answers as an empty one.
pub async fn find(
    app: &App,
    principal: &Principal,
    org: &str,
    mut request: Request,
) -> Result<Answer> {
    let mut access = OrgAccess::resolve(app.ports.meta.as_ref(), principal, org).await?;
    access.require_member()?;
    request.stacks = readable(app, &mut access, org).await?;
    let index = match super::store::open(app, org).await? {
        Some(index) => index,
        None => std::sync::Arc::new(OrgIndex::in_memory()?),
    };
    let searched = tokio::task::spawn_blocking(move || index.search(&request))
        .await
        .map_err(|e| crate::Error::internal(format!("search task: {e}")))??;
    Ok(searched)
}
