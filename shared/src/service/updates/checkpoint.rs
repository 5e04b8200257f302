//! Checkpoints while an update runs: full, verbatim and delta saves, and resource changes.

use std::sync::Arc;

use bytes::Bytes;

use crate::app::App;
use crate::error::{Error, Result};
use crate::service::optimistic::{retry_on_conflict, written, Attempt};
use crate::service::{delta, deployments};

use super::chain;
use super::model::{get, update_contended, Update};

/// Stores a full checkpoint (`PATCH …/checkpoint`): the request body, already validated by the
/// caller, gzip as the client sent it (`stored`). It is an `UntypedDeployment` plus the
/// request's `isInvalid` flag, which publishing drops ([`super::publish`]): a save costs no
/// re-encoding and no compression, and only the last save of an update is ever rewritten.
/// Idempotent: each save replaces the previous one.
pub async fn save_checkpoint(app: &App, update: &Update, stored: Bytes) -> Result<()> {
    if update.dry_run {
        return Err(Error::BadRequest("previews do not persist checkpoints".into()));
    }
    if update.checkpoint_chain.is_some() {
        // Publishing reads the chain of an update that has one: a full checkpoint now would be
        // acknowledged and then ignored. The CLI never mixes the two in one update.
        return Err(Error::BadRequest(
            "this update sends verbatim and delta checkpoints; send this one verbatim".into(),
        ));
    }
    if update.journal {
        return Err(Error::BadRequest(
            "this update persists journal entries, not checkpoints".into(),
        ));
    }
    app.ports.blobs.put(&deployments::checkpoint_key(&update.id), stored).await?;
    Ok(())
}

/// A checkpoint of the verbatim/delta protocol (docs/PROTOCOL-NOTES.md, Checkpoints).
#[derive(Debug)]
pub enum Sequenced<'a> {
    /// `checkpointverbatim`: the exact `UntypedDeployment` bytes.
    Verbatim(&'a [u8]),
    /// `checkpointdelta`: edits against the previous bytes and the SHA-256 of the result, with
    /// the request as received (gzip), which is what a delta stores.
    Delta { edits: &'a [delta::TextEdit], hash: &'a str, received: Bytes },
}

/// Stores a sequenced checkpoint on the update's chain ([`super::chain`]). `seq == last + 1`
/// applies it; a verbatim with `seq == last` overwrites (the CLI's fallback after a failed
/// delta, or a retry); a delta with `seq == last` is a retry and succeeds only if it leads to
/// the stored state. Anything else, a delta without a baseline, or a hash mismatch is a 4xx,
/// after which the CLI resends the same sequence number verbatim.
pub async fn save_sequenced(
    app: &App,
    update: &Update,
    seq: i64,
    checkpoint: Sequenced<'_>,
) -> Result<()> {
    if update.dry_run {
        return Err(Error::BadRequest("previews do not persist checkpoints".into()));
    }
    if update.journal {
        return Err(Error::BadRequest(
            "this update persists journal entries, not checkpoints".into(),
        ));
    }
    let meta = app.ports.meta.as_ref();
    let blobs = app.ports.blobs.as_ref();
    let last = update.checkpoint_seq;
    let follows = |seq: i64| {
        if seq == last || seq == last + 1 {
            Ok(())
        } else {
            Err(Error::BadRequest(format!(
                "checkpoint sequence number {seq} does not follow {last}"
            )))
        }
    };
    let (bytes, hash, link) = match checkpoint {
        Sequenced::Verbatim(raw) => {
            follows(seq)?;
            deployments::check_untyped(raw, 3..=4)?;
            (Arc::new(raw.to_vec()), delta::sha256_hex(raw), chain::Link::Full)
        }
        Sequenced::Delta { edits, hash, received } => {
            let base = match (&update.checkpoint_chain, last) {
                (_, 0) | (None, _) => {
                    return Err(Error::BadRequest(
                        "no verbatim checkpoint to apply a delta to".into(),
                    ))
                }
                (Some(c), _) => chain::read(blobs, &app.checkpoints, &update.id, last, c).await?,
            };
            follows(seq)?;
            if seq == last {
                // A retry of the delta that produced the stored state.
                return if delta::check_hash(&base, hash) {
                    Ok(())
                } else {
                    Err(Error::BadRequest(
                        "the checkpoint delta does not match the stored checkpoint".into(),
                    ))
                };
            }
            let next = delta::apply_delta(&base, edits)
                .map_err(|e| Error::BadRequest(format!("invalid checkpoint delta: {e}")))?;
            if !delta::check_hash(&next, hash) {
                return Err(Error::BadRequest(
                    "checkpoint hash mismatch after applying the delta".into(),
                ));
            }
            deployments::check_untyped(&next, 3..=4)?;
            let max = app.settings.checkpoint_chain_deltas;
            let link = chain::next_link(update.checkpoint_chain.as_ref(), seq, received, max);
            (Arc::new(next), hash.to_string(), link)
        }
    };
    let previous = update.checkpoint_chain.as_ref();
    let stored = chain::store(blobs, &update.id, seq, previous, &bytes, hash, link).await?;
    let hash = stored.hash.clone();
    // Other writers of the update item (a lease renewal, the record of resource changes) leave
    // its checkpoint alone: losing a race to one of them is retried on the fresh item (the CLI
    // fails the whole update on a 409 here). Losing to another checkpoint (the CLI sends them
    // one at a time, so a retry of this one) is settled by what that one recorded.
    let mut current = update.clone();
    let recorded = retry_on_conflict!(8, async {
        let mut next = current.clone();
        next.checkpoint_seq = seq;
        next.checkpoint_chain = Some(stored.clone());
        let attempt = written(meta.transact(vec![next.put_op()]).await, ())?;
        if let Attempt::Raced = attempt {
            let now = get(meta, &update.stack_id, &update.id).await?;
            let same = now.checkpoint_chain.as_ref().map(|c| c.hash.as_str());
            if now.checkpoint_seq == seq && same == Some(hash.as_str()) {
                return Ok(Attempt::Done(()));
            }
            let untouched = now.checkpoint_seq == update.checkpoint_seq
                && now.checkpoint_chain == update.checkpoint_chain;
            if !untouched || !now.is_live(app.clock.now()) {
                return Err(Error::Conflict(
                    "the update changed concurrently; retry the checkpoint".into(),
                ));
            }
            current = now;
        }
        Ok(attempt)
    })?;
    recorded.ok_or_else(update_contended)?;
    app.checkpoints.remember(&update.id, &hash, bytes);
    Ok(())
}

/// Records the last summary event's resource changes on the update.
pub async fn record_resource_changes(
    app: &App,
    update: &Update,
    changes: &serde_json::Value,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let json = changes.to_string();
    let mut update = update.clone();
    let recorded = retry_on_conflict!(8, async {
        if update.resource_changes.as_deref() == Some(json.as_str()) {
            return Ok(Attempt::Done(()));
        }
        let mut next = update.clone();
        next.resource_changes = Some(json.clone());
        let attempt = written(meta.transact(vec![next.put_op()]).await, ())?;
        if let Attempt::Raced = attempt {
            update = get(meta, &update.stack_id, &update.id).await?;
        }
        Ok(attempt)
    })?;
    recorded.ok_or_else(update_contended)
}
