//! Checkpoints while an update runs: full, verbatim and delta saves, and resource changes.

use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::MetaError;
use crate::service::deployments;
use crate::service::optimistic::{retry_on_conflict, written, Attempt};

use super::model::{get, update_contended, Update};

/// Stores a full checkpoint (`PATCH …/checkpoint`): the `UntypedDeployment` bytes. Idempotent:
/// each save replaces the previous one.
pub async fn save_checkpoint(app: &App, update: &Update, untyped: &[u8]) -> Result<()> {
    if update.dry_run {
        return Err(Error::BadRequest("previews do not persist checkpoints".into()));
    }
    if update.journal {
        return Err(Error::BadRequest(
            "this update persists journal entries, not checkpoints".into(),
        ));
    }
    let body = deployments::gzip(untyped)?;
    app.ports.blobs.put(&deployments::checkpoint_key(&update.id), body).await?;
    Ok(())
}

/// A checkpoint of the verbatim/delta protocol (docs/PROTOCOL-NOTES.md, Checkpoints).
#[derive(Debug)]
pub enum Sequenced<'a> {
    /// `checkpointverbatim`: the exact `UntypedDeployment` bytes.
    Verbatim(&'a [u8]),
    /// `checkpointdelta`: edits against the previous bytes and the SHA-256 of the result.
    Delta { edits: &'a [crate::service::delta::TextEdit], hash: &'a str },
}

/// Stores a sequenced checkpoint. `seq == last + 1` applies it; a verbatim with `seq == last`
/// overwrites (the CLI's fallback after a failed delta, or a retry); a delta with
/// `seq == last` is a retry and succeeds only if it leads to the stored bytes. Anything else,
/// a delta without a baseline, or a hash mismatch is a 4xx, after which the CLI resends the
/// same sequence number verbatim.
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
    let key = deployments::checkpoint_key(&update.id);
    let last = update.checkpoint_seq;
    let bytes: Vec<u8> = match checkpoint {
        Sequenced::Verbatim(raw) => {
            if seq != last && seq != last + 1 {
                return Err(Error::BadRequest(format!(
                    "checkpoint sequence number {seq} does not follow {last}"
                )));
            }
            deployments::check_untyped(raw, 3..=4)?;
            raw.to_vec()
        }
        Sequenced::Delta { edits, hash } => {
            if last == 0 {
                return Err(Error::BadRequest("no verbatim checkpoint to apply a delta to".into()));
            }
            let base = match blobs.get(&key).await? {
                Some(gz) => deployments::gunzip(&gz)?,
                None => return Err(Error::BadRequest("no checkpoint to apply a delta to".into())),
            };
            if seq == last {
                // A retry of the delta that produced the stored bytes.
                return if crate::service::delta::check_hash(&base, hash) {
                    Ok(())
                } else {
                    Err(Error::BadRequest(
                        "the checkpoint delta does not match the stored checkpoint".into(),
                    ))
                };
            }
            if seq != last + 1 {
                return Err(Error::BadRequest(format!(
                    "checkpoint sequence number {seq} does not follow {last}"
                )));
            }
            let next = crate::service::delta::apply_delta(&base, edits)
                .map_err(|e| Error::BadRequest(format!("invalid checkpoint delta: {e}")))?;
            if !crate::service::delta::check_hash(&next, hash) {
                return Err(Error::BadRequest(
                    "checkpoint hash mismatch after applying the delta".into(),
                ));
            }
            deployments::check_untyped(&next, 3..=4)?;
            next
        }
    };
    // Blob first, then the sequence number: a crash in between leaves a retry that applies the
    // same bytes again, never a sequence number without its bytes.
    blobs.put(&key, deployments::gzip(&bytes)?).await?;
    if seq == last {
        return Ok(());
    }
    let mut next = update.clone();
    next.checkpoint_seq = seq;
    match meta.transact(vec![next.put_op()]).await {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => {
            let now = get(meta, &update.stack_id, &update.id).await?;
            if now.checkpoint_seq == seq {
                Ok(())
            } else {
                Err(Error::Conflict("the update changed concurrently; retry the checkpoint".into()))
            }
        }
        Err(e) => Err(e.into()),
    }
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
