//! Engine events of an update (docs/PROTOCOL-NOTES.md, Engine events): each `events/batch` body
//! is one immutable blob named by the sequence range it holds, so a retried batch rewrites the
//! same object and read-back merges, orders and de-duplicates by `sequence`.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::deployments;
use crate::app::App;
use crate::error::{Error, Result};

/// Most events in one batch (the CLI sends at most 50).
pub const MAX_BATCH: usize = 1000;
/// Largest single event, as JSON. Events carry resource states (old and new inputs and
/// outputs), so they can be as large as the largest resource.
pub const MAX_EVENT_BYTES: usize = 8 << 20;
/// Events returned per read-back page.
pub const READ_PAGE: usize = 1000;

/// Length of `v` as compact JSON, counted without building the text.
fn json_len(v: &Json) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, v) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

fn prefix(update_id: &str) -> String {
    format!("updates/{update_id}/events/")
}

/// Validates a batch: objects with a non-negative integer `sequence`. Returns the events in
/// sequence order and the resource changes of a summary event, if the batch has one.
pub fn check_batch(events: Vec<Json>) -> Result<(Vec<Json>, Option<Json>)> {
    if events.len() > MAX_BATCH {
        return Err(Error::BadRequest(format!("at most {MAX_BATCH} events per batch")));
    }
    let mut by_seq = BTreeMap::new();
    let mut summary = None;
    for e in events {
        let seq =
            e.get("sequence").and_then(Json::as_i64).filter(|s| *s >= 0).ok_or_else(|| {
                Error::BadRequest("every event needs a non-negative integer sequence".into())
            })?;
        let size = json_len(&e);
        if size > MAX_EVENT_BYTES {
            return Err(Error::BadRequest(format!(
                "event {seq} is {size} bytes; an event holds at most {MAX_EVENT_BYTES}"
            )));
        }
        if let Some(rc) = e.get("summaryEvent").and_then(|s| s.get("resourceChanges")) {
            summary = Some(rc.clone());
        }
        by_seq.insert(seq, e);
    }
    Ok((by_seq.into_values().collect(), summary))
}

/// Stores a checked, non-empty batch durably.
pub async fn store(app: &App, update_id: &str, events: &[Json]) -> Result<()> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
    let seq = |e: &Json| e.get("sequence").and_then(Json::as_i64).unwrap_or(0);
    let key = format!("{}{:012}-{:012}.json.gz", prefix(update_id), seq(first), seq(last));
    let body = serde_json::to_vec(events).map_err(|e| Error::caused("JSON encoding", e))?;
    app.ports.blobs.put(&key, deployments::gzip(&body)?).await?;
    Ok(())
}

/// Reads events with `sequence >= from`, in order, at most [`READ_PAGE`]; also returns the
/// sequence to continue from when more stored events follow.
pub async fn read(app: &App, update_id: &str, from: i64) -> Result<(Vec<Json>, Option<i64>)> {
    let blobs = app.ports.blobs.as_ref();
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = blobs.list(&prefix(update_id), after).await?;
        keys.extend(page.keys);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut merged = BTreeMap::new();
    for key in keys {
        let Some(range) = key.rsplit('/').next().and_then(|n| n.strip_suffix(".json.gz")) else {
            continue;
        };
        let last: i64 = range.split('-').nth(1).and_then(|l| l.parse().ok()).unwrap_or(i64::MAX);
        if last < from {
            continue;
        }
        let Some(gz) = blobs.get(&key).await? else { continue };
        let events: Vec<Json> = serde_json::from_slice(&deployments::gunzip(&gz)?)
            .map_err(|e| Error::caused(format!("stored events {key} are corrupt"), e))?;
        for e in events {
            if let Some(s) = e.get("sequence").and_then(Json::as_i64).filter(|s| *s >= from) {
                merged.entry(s).or_insert(e);
            }
        }
    }
    let more = merged.len() > READ_PAGE;
    let page: Vec<(i64, Json)> = merged.into_iter().take(READ_PAGE).collect();
    // Sequences are client-sent: the last possible one has no successor rather than an overflow.
    let next = if more { page.last().map(|(s, _)| s.saturating_add(1)) } else { None };
    Ok((page.into_iter().map(|(_, e)| e).collect(), next))
}
