//! Verbatim/delta checkpoints stored as a chain: a full state now and then, and between two
//! full states only the deltas the CLI sent (docs/ARCHITECTURE.md, Checkpoint chains).
//!
//! Storing the whole state on every delta save made a 10,000-resource `pulumi up` write
//! gigabytes for a few megabytes of deltas. Now a save writes either
//!
//! * the delta request as the client compressed it, under `<seq>.delta.json.gz`, or
//! * the whole state (gzip) under `<seq>-<sha256>.json.gz`: for every verbatim save, and for a
//!   delta once the deltas since the last full state weigh as much as that state did, or
//!   `Settings::checkpoint_chain_deltas` of them are stored.
//!
//! So the bytes written are at most twice the bytes received (each full state written is paid
//! for by as many delta bytes before it, unless the count limit comes first), and reading the
//! state applies at most that many deltas to one full state.
//!
//! The update item says where the chain starts and what it leads to ([`Chain`]): the full
//! state's sequence number and hash, and the SHA-256 of the current state. Crash safety
//! (DESIGN §6): every blob is written before the item that points at it, and no blob the item
//! points at is ever rewritten: a full state's key carries its hash, and a delta's key is
//! only written while the item's sequence is still the one before it (once acknowledged, a
//! delta at the same number is a retry that writes nothing). A crash between the two writes
//! leaves a blob nobody points at, which the retention job removes with the update.
//!
//! Reading the state costs a `GET` per blob, so the states last saved are also kept in the
//! process ([`RecentStates`]), keyed by their hash: the CLI's next delta usually reaches the same
//! instance, which applies it without reading anything. A hit is exact by construction (the
//! bytes hash to the key).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::ports::BlobStore;
use crate::service::delta::{self, TextEdit};
use crate::service::deployments;

/// Deltas read at the same time when a state is rebuilt.
const READ_AHEAD: usize = 16;

/// Where an update's checkpoint chain starts and what it leads to (kept on the update item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Sequence number of the full state the chain starts from.
    pub base: i64,
    /// Its SHA-256 (hex), part of its key.
    pub base_hash: String,
    /// Its stored (gzip) size.
    pub base_bytes: i64,
    /// Stored bytes of the deltas after it.
    pub delta_bytes: i64,
    /// SHA-256 (hex) of the current state: the base with every delta up to the update's
    /// `checkpoint_seq` applied.
    pub hash: String,
}

/// Key of a full state saved at `seq` whose bytes hash to `hash`.
pub fn full_key(update_id: &str, seq: i64, hash: &str) -> String {
    format!("updates/{update_id}/checkpoints/{seq:012}-{hash}.json.gz")
}

/// Key of the delta saved at `seq`.
pub fn delta_key(update_id: &str, seq: i64) -> String {
    format!("updates/{update_id}/checkpoints/{seq:012}.delta.json.gz")
}

/// A stored delta: the `PATCH …/checkpointdelta` body as received.
#[derive(Deserialize)]
struct StoredDelta {
    #[serde(rename = "deploymentDelta")]
    deployment_delta: Vec<TextEdit>,
}

/// What a save stores.
pub enum Link {
    /// The whole state (its bytes).
    Full,
    /// The delta request as received (gzip).
    Delta(Bytes),
}

/// Whether a delta of `received` bytes goes on the chain, or the state is stored whole (always
/// without a chain to extend). At most `max_deltas` follow one full state.
pub fn next_link(chain: Option<&Chain>, seq: i64, received: Bytes, max_deltas: i64) -> Link {
    match chain {
        Some(c)
            if c.delta_bytes.saturating_add(received.len() as i64) < c.base_bytes
                && seq - c.base <= max_deltas =>
        {
            Link::Delta(received)
        }
        _ => Link::Full,
    }
}

/// Stores the state `bytes` (hashing to `hash`) saved at `seq` as `link`, and returns the chain
/// the update item must record (after this write, never before).
pub async fn store(
    blobs: &dyn BlobStore,
    update_id: &str,
    seq: i64,
    previous: Option<&Chain>,
    bytes: &[u8],
    hash: String,
    link: Link,
) -> Result<Chain> {
    match (link, previous) {
        (Link::Delta(received), Some(chain)) => {
            let stored = received.len() as i64;
            blobs.put(&delta_key(update_id, seq), received).await?;
            Ok(Chain {
                delta_bytes: chain.delta_bytes.saturating_add(stored),
                hash,
                ..chain.clone()
            })
        }
        _ => {
            let gz = deployments::gzip(bytes)?;
            let base_bytes = gz.len() as i64;
            blobs.put(&full_key(update_id, seq, &hash), gz).await?;
            Ok(Chain { base: seq, base_hash: hash.clone(), base_bytes, delta_bytes: 0, hash })
        }
    }
}

/// The state the chain leads to at `seq`: the recent one if this process holds it, or the
/// base with every delta applied. A chain that does not lead to its recorded hash is corrupt
/// storage, an internal error.
pub async fn read(
    blobs: &dyn BlobStore,
    recent: &RecentStates,
    update_id: &str,
    seq: i64,
    chain: &Chain,
) -> Result<Arc<Vec<u8>>> {
    if let Some(hit) = recent.recall(update_id, &chain.hash) {
        return Ok(hit);
    }
    let corrupt =
        |what: String| Error::internal(format!("checkpoint chain of {update_id}: {what}"));
    let key = full_key(update_id, chain.base, &chain.base_hash);
    let gz = blobs.get(&key).await?.ok_or_else(|| corrupt(format!("{key} is missing")))?;
    let mut state = deployments::gunzip(&gz)?;
    let mut deltas = futures::stream::iter(chain.base + 1..=seq)
        .map(|s| async move {
            let key = delta_key(update_id, s);
            blobs.get(&key).await?.ok_or_else(|| corrupt(format!("{key} is missing")))
        })
        .buffered(READ_AHEAD);
    while let Some(gz) = deltas.try_next().await? {
        let stored: StoredDelta = serde_json::from_slice(&deployments::gunzip(&gz)?)
            .map_err(|e| corrupt(format!("a stored delta is not readable: {e}")))?;
        state = delta::apply_delta(&state, &stored.deployment_delta)
            .map_err(|e| corrupt(format!("a stored delta does not apply: {e}")))?;
    }
    if !delta::check_hash(&state, &chain.hash) {
        return Err(corrupt(format!("the state at {seq} does not hash to {}", chain.hash)));
    }
    let state = Arc::new(state);
    recent.remember(update_id, &chain.hash, state.clone());
    Ok(state)
}

/// States this process saved or read last, newest first, by update and hash: a cache that
/// lives as long as the app (one Lambda sandbox, or the emulator).
#[derive(Default)]
pub struct RecentStates {
    entries: Mutex<VecDeque<Recent>>,
}

/// One held state: (update id, hash, bytes).
type Recent = (String, String, Arc<Vec<u8>>);

/// At most this many states, and [`RECENT_BYTES`] together.
const RECENT_STATES: usize = 8;
const RECENT_BYTES: usize = 32 << 20;

impl RecentStates {
    /// Keeps `state` (which hashes to `hash`) as the latest state of `update_id`.
    pub fn remember(&self, update_id: &str, hash: &str, state: Arc<Vec<u8>>) {
        if state.len() > RECENT_BYTES {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        entries.retain(|(u, _, _)| u != update_id);
        entries.push_front((update_id.to_string(), hash.to_string(), state));
        let (mut total, mut keep) = (0, 0);
        for (_, _, s) in entries.iter() {
            if keep == RECENT_STATES || total + s.len() > RECENT_BYTES {
                break;
            }
            total += s.len();
            keep += 1;
        }
        entries.truncate(keep);
    }

    /// The state of `update_id` hashing to `hash`, if this process holds it.
    fn recall(&self, update_id: &str, hash: &str) -> Option<Arc<Vec<u8>>> {
        let entries = self.entries.lock().ok()?;
        entries.iter().find(|(u, h, _)| u == update_id && h == hash).map(|(_, _, s)| s.clone())
    }

    /// Forgets what this process holds of `update_id` (its update ended).
    pub fn forget(&self, update_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(u, _, _)| u != update_id);
        }
    }

    /// Forgets everything, as a restarted process has (crash tests).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}
