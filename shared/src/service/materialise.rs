//! Incremental materialisation of journal-mode updates (docs/PROTOCOL-NOTES.md,
//! Journal: the deployment is produced at `complete` and on lease expiry, and may be produced
//! incrementally).
//!
//! A journal-mode update stores each batch of entries as it arrives and nothing else, so
//! without help every way of ending it (complete, cancel, lease expiry through the reaper or
//! the next start) replays the whole journal from the base deployment. For a long update that
//! is slow exactly when it matters: a crashed 10k-resource `pulumi up` leaves the reaper, or
//! the user's next `pulumi up`, with the full replay to do.
//!
//! So, off the request path:
//!
//! 1. Saving a batch ([`after_batch`]) sends one message to the `materialise` queue when the
//!    batch's sequence range crosses a multiple of
//!    [`Settings::materialise_every_entries`](crate::app::Settings). The decision uses only the
//!    batch and the update item the lease check already read: no extra reads, at most one
//!    message per crossing (a retried batch may send it again; the job is idempotent), and a
//!    failed send is logged, never the client's error: the next crossing, or the final replay,
//!    covers it.
//! 2. `job-update-materialise` ([`handle_batch`]) replays from the newest snapshot (or the
//!    base) through every entry stored so far and writes the replayer's resumable state as a
//!    gzip blob under the update's scratch prefix, `updates/<id>/snapshots/<seq>.json.gz`, then
//!    records the sequence it covers on the update item with one conditional update (only while
//!    the update runs and the recorded sequence is lower; [`Update::snapshot_update`]):
//!    duplicate or out-of-order deliveries never move the snapshot backwards, and journal
//!    batches stored meanwhile do not make it lose. A journal the replayer rejects (or a
//!    corrupt batch) gets no snapshot: the final replay reports it as it always did.
//! 3. Every final replay ([`replay`]: complete, cancel, expiry) starts from the newest snapshot
//!    and reads only the batches that may hold later entries. The replayer state is the exact
//!    state an uninterrupted replay has after the same entries, so the published deployment is
//!    byte-for-byte the same (tests below and in `tests/src/jobs.rs`).
//!
//! Snapshots are scratch blobs of the update: the retention job removes them with the rest of
//! `updates/<id>/` once the update has ended (docs/ARCHITECTURE.md, Data model;
//! `service::retention`).
//!
//! `GET …/export` is deliberately left alone during an update: docs/PROTOCOL-NOTES.md (Stacks, #15;
//! Journal) makes it the stack's current deployment, which the CLI uses as the base of the next
//! journal (the `*Old` indexes point into it), and its Leases section makes the last acknowledged
//! state the stack's state only once an update ends. Checkpoint-mode updates do the same: export
//! shows the last completed version until the update ends.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::journal::{JournalEntry, Replayer};
use super::updates::{self, journal_prefix, Status, Update};
use super::{deployments, limits};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::{StackId, UpdateId};
use crate::ports::queue::MATERIALISE_QUEUE;
use crate::ports::{Message, MetaError};

/// Format version of a snapshot blob; a blob of another format is ignored (full replay).
/// 2: resources kept as text, apart from the base deployment.
const SNAPSHOT_FORMAT: u32 = 2;

/// Key of the snapshot of `update_id` that covers its journal up to `seq`.
pub fn snapshot_key(update_id: &str, seq: i64) -> String {
    format!("updates/{update_id}/snapshots/{seq:012}.json.gz")
}

/// A materialise request, the body of a `materialise` queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Immutable id of the update's stack.
    pub stack_id: StackId,
    /// The update.
    pub update_id: UpdateId,
    /// Last sequence ID of the batch that asked: a snapshot covering it makes the request moot.
    pub sequence: i64,
}

/// A snapshot blob: the replayer's resumable state after every entry up to `sequence`.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u32,
    update: String,
    /// Base deployment key the replay started from (empty: none), so a snapshot is never
    /// resumed onto another base.
    base: String,
    sequence: i64,
    replayer: Replayer,
}

/// Whether a batch holding sequence IDs `first..=last` crosses a multiple of `every` (a batch
/// that ends exactly on one counts). Batches are sent one at a time and in order, so each
/// multiple is crossed by one batch (and its retries).
fn crosses(first: i64, last: i64, every: i64) -> bool {
    every > 0 && first >= 1 && last >= first && (first - 1) / every < last / every
}

/// After a journal batch was stored: asks `job-update-materialise` for a snapshot when the
/// batch crossed the configured threshold. Never fails the request (see the module doc).
pub(crate) async fn after_batch(app: &App, update: &Update, first: i64, last: i64) {
    let every = app.settings.materialise_every_entries;
    if !crosses(first, last, every) || update.snapshot_seq >= last || update.base_key.is_none() {
        return;
    }
    let request =
        Request { stack_id: update.stack_id.clone(), update_id: update.id.clone(), sequence: last };
    let body = match serde_json::to_string(&request) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(update = %update.id, error = %e, "materialise request not encoded");
            return;
        }
    };
    if let Err(e) = app.ports.queue.send(MATERIALISE_QUEUE, &body, Duration::ZERO).await {
        // The entries are stored; only the shortcut is lost until the next crossing.
        tracing::warn!(update = %update.id, sequence = last, error = %e, "materialise request not queued");
    }
}

/// A replay, as [`replay`] leaves it.
pub(crate) struct Replay {
    /// The replayer after every stored entry it could apply in sequence order.
    pub replayer: Replayer,
    /// A stored batch was corrupt or an entry was rejected (logged).
    pub degraded: bool,
}

/// A replay on top of the deployment (`UntypedDeployment.deployment`) stored at `key`, or
/// on none. The deployment is read as text: its resources are never parsed into trees.
async fn replay_on_base(app: &App, key: Option<&str>) -> Result<Replayer> {
    #[derive(Deserialize)]
    struct Untyped<'a> {
        #[serde(borrow, default)]
        deployment: Option<&'a serde_json::value::RawValue>,
    }
    let base = |e| Error::caused("journal base", e);
    let Some(key) = key else { return Replayer::new(serde_json::Value::Null).map_err(base) };
    let bytes = deployments::read_stored(app.ports.blobs.as_ref(), key).await?;
    // Resources are kept as text, which no depth limit guards; one that generation must
    // change becomes a tree, and serde_json builds none deeper than 128 levels. Refuse what
    // no route would have stored, as reading the deployment as a tree did.
    if limits::json_depth_exceeds(&bytes, limits::MAX_JSON_DEPTH) {
        return Err(Error::internal(format!(
            "stored deployment {key} is corrupt: it nests deeper than {} levels",
            limits::MAX_JSON_DEPTH
        )));
    }
    let untyped: Untyped = serde_json::from_slice(&bytes)
        .map_err(|e| Error::caused(format!("stored deployment {key} is corrupt"), e))?;
    match untyped.deployment {
        Some(deployment) => Replayer::from_text(deployment.get()).map_err(base),
        None => Replayer::new(serde_json::Value::Null).map_err(base),
    }
}

/// The replayer stored by the update's newest snapshot, if it is there, intact and built on
/// `base`. Anything else is logged and answered with None: the caller replays in full, which
/// is slower but gives the same result.
async fn resume(app: &App, update: &Update, base: Option<&str>) -> Option<Replayer> {
    if update.snapshot_seq <= 0 {
        return None;
    }
    let key = snapshot_key(&update.id, update.snapshot_seq);
    let gz = match app.ports.blobs.get(&key).await {
        Ok(Some(gz)) => gz,
        Ok(None) => {
            // Replaced by a newer one between our read of the update and now.
            tracing::info!(update = %update.id, key, "snapshot gone; replaying in full");
            return None;
        }
        Err(e) => {
            tracing::warn!(update = %update.id, key, error = %e, "snapshot unreadable; replaying in full");
            return None;
        }
    };
    let snapshot: Snapshot = match deployments::gunzip(&gz)
        .and_then(|raw| serde_json::from_slice(&raw).map_err(|e| Error::caused("JSON encoding", e)))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(update = %update.id, key, error = %e.chain(), "snapshot corrupt; replaying in full");
            return None;
        }
    };
    let fits = snapshot.format == SNAPSHOT_FORMAT
        && update.id == snapshot.update.as_str()
        && snapshot.base == base.unwrap_or_default()
        && snapshot.sequence == update.snapshot_seq
        && snapshot.replayer.last_sequence() == snapshot.sequence;
    if !fits {
        tracing::warn!(update = %update.id, key, "snapshot does not fit this update; replaying in full");
        return None;
    }
    if let Err(e) = snapshot.replayer.check_resumed() {
        tracing::warn!(update = %update.id, key, error = %e, "snapshot inconsistent; replaying in full");
        return None;
    }
    Some(snapshot.replayer)
}

/// The last sequence ID in a batch key (`…/<first>-<last>.json.gz`), if it has that shape.
fn batch_last(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?.strip_suffix(".json.gz")?;
    name.split_once('-')?.1.parse().ok()
}

/// Replays `update`'s stored journal onto the deployment at `base` (the stack's deployment
/// when the update started), resuming from the newest snapshot when there is one. A stored
/// batch that is corrupt, or an entry the replayer rejects, is logged and skipped and marks the
/// replay degraded; entries after a rejected one wait for it forever, exactly as in a replay
/// from the base.
pub(crate) async fn replay(app: &App, update: &Update, base: Option<&str>) -> Result<Replay> {
    let blobs = app.ports.blobs.as_ref();
    let mut replayer = match resume(app, update, base).await {
        Some(resumed) => resumed,
        None => replay_on_base(app, base).await?,
    };
    let covered = replayer.last_sequence();
    let mut degraded = false;
    let mut after = None;
    loop {
        let page = blobs.list(&journal_prefix(&update.id), after).await?;
        for key in &page.keys {
            // A batch whose last entry the snapshot covers holds nothing new (its entries only
            // grow), so it is not even read: that is the saving.
            if batch_last(key).is_some_and(|last| last <= covered) {
                continue;
            }
            let Some(gz) = blobs.get(key).await? else { continue };
            let entries: Vec<JournalEntry> = match updates::read_batch(&gz) {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(update = %update.id, key, error = %e, "stored journal batch is corrupt; skipped");
                    degraded = true;
                    continue;
                }
            };
            for entry in entries {
                let seq = entry.sequence_id;
                if let Err(e) = replayer.apply_owned(vec![entry]) {
                    tracing::error!(update = %update.id, sequence = seq, error = %e, "journal entry rejected during replay; skipped");
                    degraded = true;
                }
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(Replay { replayer, degraded })
}

/// What one materialise request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A snapshot covering the journal up to this sequence ID was written and recorded.
    Written(i64),
    /// The update already has a snapshot covering the request (a duplicate or late message),
    /// or no entry was applied beyond the one it has.
    UpToDate,
    /// The update is gone, has ended, or is not a journal-mode update started with a recorded
    /// base: its final replay does (or did) the work.
    NotApplicable,
    /// The journal could not be replayed cleanly so far; no snapshot (the final replay
    /// reports the problem).
    Degraded,
    /// A snapshot was written but a newer one was recorded first, or the update ended
    /// meanwhile; the blob is left to be replaced or removed with the update.
    Superseded,
}

/// Handles one materialise request (idempotent; safe under duplicate and out-of-order
/// delivery).
pub async fn materialise(app: &App, request: &Request) -> Result<Outcome> {
    let meta = app.ports.meta.as_ref();
    let update = match updates::get(meta, &request.stack_id, &request.update_id).await {
        Ok(u) => u,
        Err(Error::NotFound(_)) => return Ok(Outcome::NotApplicable),
        Err(e) => return Err(e),
    };
    if !update.journal || update.status != Status::Running {
        return Ok(Outcome::NotApplicable);
    }
    if update.snapshot_seq >= request.sequence {
        return Ok(Outcome::UpToDate);
    }
    // Only the base recorded at start is trusted: the stack's current deployment may already
    // be this update's result if it ended after the read above.
    let Some(base) = update.base_key.clone() else { return Ok(Outcome::NotApplicable) };
    let base = (!base.is_empty()).then_some(base);
    let Replay { replayer, degraded } = replay(app, &update, base.as_deref()).await?;
    if degraded {
        tracing::warn!(update = %update.id, "journal not replayable so far; no snapshot");
        return Ok(Outcome::Degraded);
    }
    let seq = replayer.last_sequence();
    if seq <= update.snapshot_seq {
        return Ok(Outcome::UpToDate);
    }
    let snapshot = Snapshot {
        format: SNAPSHOT_FORMAT,
        update: update.id.to_string(),
        base: base.clone().unwrap_or_default(),
        sequence: seq,
        replayer,
    };
    let raw = serde_json::to_vec(&snapshot).map_err(|e| Error::caused("JSON encoding", e))?;
    drop(snapshot);
    let key = snapshot_key(&update.id, seq);
    // Blob first, then the pointer (docs/ARCHITECTURE.md, Blob first, then pointer): a crash in
    // between leaves a scratch blob.
    app.ports.blobs.put(&key, deployments::gzip(&raw)?).await?;
    match meta.update(update.snapshot_update(seq)).await {
        Ok(_) => {}
        // Ended meanwhile, or a newer snapshot was recorded first.
        Err(MetaError::ConditionFailed) => return Ok(Outcome::Superseded),
        Err(e) => return Err(e.into()),
    }
    if update.snapshot_seq > 0 {
        // Only the newest snapshot is ever resumed from. A replay that read the older one's
        // pointer and now finds it gone replays in full instead. (One recorded by another job
        // in between is left for retention.)
        let old = snapshot_key(&update.id, update.snapshot_seq);
        if let Err(e) = app.ports.blobs.delete(&old).await {
            tracing::info!(key = old, error = %e, "old snapshot left for retention");
        }
    }
    Ok(Outcome::Written(seq))
}

/// `job-update-materialise`: handles a batch of requests; returns the ids of the messages to
/// retry (store outages; a malformed message fails until the dead-letter queue takes it).
pub async fn handle_batch(app: &App, messages: Vec<Message>) -> Vec<String> {
    let mut failed = Vec::new();
    for m in messages {
        let request: Request = match serde_json::from_str(&m.body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(message = %m.id, error = %e, "not a materialise request");
                failed.push(m.id);
                continue;
            }
        };
        match materialise(app, &request).await {
            Ok(outcome) => {
                tracing::info!(update = %request.update_id, ?outcome, "job-update-materialise");
            }
            Err(e) => {
                tracing::warn!(update = %request.update_id, error = %e, "materialise failed; retried");
                failed.push(m.id);
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_crossed_once() {
        assert!(crosses(1, 1000, 1000));
        assert!(crosses(901, 1000, 1000));
        assert!(crosses(1000, 1000, 1000));
        assert!(!crosses(1001, 1100, 1000));
        assert!(crosses(1950, 2049, 1000));
        assert!(!crosses(1, 999, 1000));
        assert!(!crosses(1, 5000, 0), "0 turns it off");
        // Every crossing of a journal sent in batches of 7 is seen by exactly one batch.
        let every = 100;
        let hits = (0..1000).filter(|b| crosses(b * 7 + 1, b * 7 + 7, every)).count();
        assert_eq!(hits, 7000 / 100);
    }

    #[test]
    fn batch_keys_name_their_last_entry() {
        assert_eq!(batch_last("updates/u/journal/000000000001-000000000100.json.gz"), Some(100));
        assert_eq!(batch_last("updates/u/journal/weird.json.gz"), None);
        assert_eq!(snapshot_key("u", 42), "updates/u/snapshots/000000000042.json.gz");
    }
}
