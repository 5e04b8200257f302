//! The lease: tokens, authenticating lease calls, renewing.

use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::{Error, Result};
use crate::names::StackRef;
use crate::names::{StackId, UpdateId};
use crate::ports::MetadataStore;
use crate::service::optimistic::{retry_on_conflict, written, Attempt};
use crate::service::stacks;

use super::model::{get, update_contended, Update};

pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Lease tokens name their stack and update so a lease call reads only the update item.
pub(super) fn new_lease_token(update: &Update) -> String {
    format!("{}.{}.{}", update.stack_id, update.id, hex::encode(rand::random::<[u8; 24]>()))
}

/// The stack's running update, if its lease is still live at `now`.
pub async fn live_update(
    meta: &dyn MetadataStore,
    stack: &stacks::Stack,
    now: i64,
) -> Result<Option<Update>> {
    let Some(active) = &stack.active_update else { return Ok(None) };
    match get(meta, &stack.id, active).await {
        Ok(u) if u.is_live(now) => Ok(Some(u)),
        Ok(_) | Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The answer to a lease call whose token does not hold the update's lease (403, which the CLI
/// reads as "lease expired").
pub fn lease_refused() -> Error {
    Error::Forbidden("the update token is invalid, expired or was released".into())
}

/// Resolves an `update-token` for the update named in the path. The token must be the update's
/// lease and the path must name the update's stack. With `live`, the lease must still be held
/// (403 otherwise, which the CLI reads as "lease expired").
pub async fn authenticate_lease(
    app: &App,
    token: &str,
    path: &StackRef,
    update_id: &UpdateId,
    live: bool,
) -> Result<Update> {
    let refused = lease_refused;
    let mut parts = token.splitn(3, '.');
    let (Some(stack_id), Some(token_update), Some(_)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(refused());
    };
    if *update_id != token_update {
        return Err(refused());
    }
    let Ok(stack_id) = StackId::parse(stack_id) else { return Err(refused()) };
    let update = match get(app.ports.meta.as_ref(), &stack_id, update_id).await {
        Ok(u) => u,
        Err(Error::NotFound(_)) => return Err(refused()),
        Err(e) => return Err(e),
    };
    let matches = update
        .lease_hash
        .as_deref()
        .is_some_and(|h| constant_time_eq(h.as_bytes(), hash(token).as_bytes()));
    let bound = update.org == path.org.as_str()
        && update.project == path.project.as_str()
        && update.stack == path.stack.as_str();
    if !matches || !bound {
        return Err(refused());
    }
    if live && !update.is_live(app.clock.now()) {
        return Err(refused());
    }
    Ok(update)
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Extends the lease to `now + duration` (capped by the configured lease length). The token
/// stays the same, so calls in flight with it keep working.
pub async fn renew(app: &App, update: Update, duration: i64) -> Result<i64> {
    let meta = app.ports.meta.as_ref();
    let mut update = update;
    let renewed = retry_on_conflict!(8, async {
        let now = app.clock.now();
        if !update.is_live(now) {
            return Err(Error::Forbidden("the update's lease has expired or was released".into()));
        }
        let expires = now + duration.clamp(1, app.settings.lease_seconds);
        let mut next = update.clone();
        next.lease_expires = expires.max(update.lease_expires);
        let attempt = written(meta.transact(vec![next.put_op()]).await, next.lease_expires)?;
        if let Attempt::Raced = attempt {
            update = get(meta, &update.stack_id, &update.id).await?;
        }
        Ok(attempt)
    })?;
    renewed.ok_or_else(update_contended)
}
