//! Journal batches (`PATCH …/journalentries`): storing them after the intake accepted them,
//! and recognising retries.

use bytes::Bytes;

use crate::app::App;
use crate::error::{Error, Result};
use crate::service::deployments;
use crate::service::journal::JournalEntry;
use crate::service::optimistic::{retry_on_conflict, written, Attempt};

use super::model::{get, update_contended, Update};

/// Where an update's journal batches live (scratch: retention removes them with the update).
pub(crate) fn journal_prefix(update_id: &str) -> String {
    format!("updates/{update_id}/journal/")
}

/// Stores one batch of journal entries (`PATCH …/journalentries`) after the intake accepted it
/// (`service::journal_intake`): the batch object is named by its sequence range, then the
/// update's cursor is advanced with a conditional write, and only then is the batch
/// acknowledged. A retry of entries already accepted is acknowledged without a write when it
/// equals what is stored, and refused (409) when it does not: an acknowledged entry is never
/// replaced.
///
/// `received` is the batch as the client compressed it (its `{"entries": […]}` body, gzip),
/// when it did: that is what is stored, as it came, so the batch is never compressed again
/// ([`read_batch`] reads either form).
pub async fn save_journal(
    app: &App,
    update: &Update,
    entries: &[JournalEntry],
    received: Option<&Bytes>,
) -> Result<()> {
    use crate::service::journal_intake::{Cursor, Intake};
    if !update.journal {
        return Err(Error::BadRequest(
            "this update persists checkpoints, not journal entries".into(),
        ));
    }
    if entries.is_empty() {
        return Ok(());
    }
    let meta = app.ports.meta.as_ref();
    let mut update = update.clone();
    // Stored once: a retry after a lost cursor write (a renewal or a snapshot record changed
    // the item) puts the same bytes under the same key again otherwise.
    let mut batch_stored = false;
    let stored = retry_on_conflict!(8, async {
        // Updates started before the intake kept this cursor: shape checks only (and replay
        // judges the indexes at `complete`).
        let cursor: Option<Cursor> = update.journal_cursor.as_deref().and_then(|text| {
            serde_json::from_str(text)
                .inspect_err(
                    |e| tracing::warn!(update = %update.id, "journal cursor unreadable: {e}"),
                )
                .ok()
        });
        let Some(cursor) = cursor else {
            for e in entries {
                crate::service::journal_intake::check_shape(e)?;
            }
            return store_batch(app, &update, entries, received).await.map(Attempt::Done);
        };
        let next = match cursor.check(entries)? {
            Intake::Retry => return same_as_stored(app, &update, entries).await.map(Attempt::Done),
            Intake::Accept(next) => next,
        };
        if !batch_stored {
            store_batch(app, &update, entries, received).await?;
            batch_stored = true;
        }
        let mut advanced = update.clone();
        advanced.journal_cursor =
            Some(serde_json::to_string(&next).map_err(|e| Error::caused("JSON encoding", e))?);
        let attempt = written(meta.transact(vec![advanced.put_op()]).await, ())?;
        if let Attempt::Raced = attempt {
            // A renewal or a snapshot changed the item meanwhile: check against it again.
            update = get(meta, &update.stack_id, &update.id).await?;
            if update.status.is_final() {
                return Err(Error::Conflict("the update has ended".into()));
            }
        }
        Ok(attempt)
    })?;
    stored.ok_or_else(update_contended)
}

/// The batch object's key: its lowest and highest sequence IDs.
pub(super) fn batch_key(update_id: &str, entries: &[JournalEntry]) -> Option<String> {
    let first = entries.iter().map(|e| e.sequence_id).min()?;
    let last = entries.iter().map(|e| e.sequence_id).max()?;
    Some(format!("{}{first:012}-{last:012}.json.gz", journal_prefix(update_id)))
}

pub(super) async fn store_batch(
    app: &App,
    update: &Update,
    entries: &[JournalEntry],
    received: Option<&Bytes>,
) -> Result<()> {
    let Some(key) = batch_key(&update.id, entries) else { return Ok(()) };
    let first = entries.iter().map(|e| e.sequence_id).min().unwrap_or(0);
    let last = entries.iter().map(|e| e.sequence_id).max().unwrap_or(0);
    let stored = match received {
        // The client's own bytes: they decoded (with the decoder `read_batch` uses) to the
        // entries just accepted.
        Some(gz) => gz.clone(),
        None => {
            let body =
                serde_json::to_vec(entries).map_err(|e| Error::caused("JSON encoding", e))?;
            deployments::gzip(&body)?
        }
    };
    app.ports.blobs.put(&key, stored).await?;
    crate::service::materialise::after_batch(app, update, first, last).await;
    Ok(())
}

/// Every stored journal batch of an update.
pub(super) async fn journal_keys(app: &App, update_id: &str) -> Result<Vec<String>> {
    let (mut keys, mut after) = (Vec::new(), None);
    loop {
        let page = app.ports.blobs.list(&journal_prefix(update_id), after).await?;
        keys.extend(page.keys);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(keys),
        }
    }
}

/// Acknowledges a retried batch whose every entry equals the one stored under its sequence
/// ID; 409 otherwise.
pub(super) async fn same_as_stored(
    app: &App,
    update: &Update,
    entries: &[JournalEntry],
) -> Result<()> {
    let blobs = app.ports.blobs.as_ref();
    let differs = || {
        Error::Conflict(
            "journal entries with these sequence IDs were already recorded with other contents"
                .into(),
        )
    };
    // The common case: the same batch again, stored under the same key.
    let mut stored: std::collections::HashMap<i64, JournalEntry> = Default::default();
    let keys = match batch_key(&update.id, entries) {
        Some(key) if blobs.get(&key).await?.is_some() => vec![key],
        _ => journal_keys(app, &update.id).await?,
    };
    for key in keys {
        let Some(gz) = blobs.get(&key).await? else { continue };
        let batch = read_batch(&gz)
            .map_err(|e| Error::caused(format!("journal batch {key} is corrupt"), e))?;
        stored.extend(batch.into_iter().map(|e| (e.sequence_id, e)));
    }
    match entries.iter().all(|e| stored.get(&e.sequence_id) == Some(e)) {
        true => Ok(()),
        false => Err(differs()),
    }
}

/// The client's form of a batch (`apitype.JournalEntries`).
#[derive(serde::Deserialize)]
struct Received {
    entries: Vec<JournalEntry>,
}

/// The entries of a stored batch (gzip): the client's `{"entries": […]}` as it sent it, or a
/// bare `[…]` (what the server writes when the client did not compress, and what every batch
/// stored before batches were kept as received looks like).
pub(crate) fn read_batch(gz: &[u8]) -> std::result::Result<Vec<JournalEntry>, Error> {
    let json = deployments::gunzip(gz)?;
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    let parsed = match first {
        Some(b'{') => serde_json::from_slice::<Received>(&json).map(|r| r.entries),
        _ => serde_json::from_slice::<Vec<JournalEntry>>(&json),
    };
    parsed.map_err(|e| Error::caused("not a journal batch", e))
}
