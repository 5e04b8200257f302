//! Engine events of an update (docs/PROTOCOL-NOTES.md, Engine events): each `events/batch` body
//! is one immutable blob named by the sequence range it holds, so a retried batch rewrites the
//! same object and read-back merges, orders and de-duplicates by `sequence`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value as Json;

use super::deployments;
use crate::app::App;
use crate::error::{Error, Result};

/// Most events in one batch (the CLI sends at most 50).
pub const MAX_BATCH: usize = 1000;
/// Largest single event, as sent. Events carry resource states (old and new inputs and
/// outputs), so they can be as large as the largest resource.
pub const MAX_EVENT_BYTES: usize = 8 << 20;
/// Events returned per read-back page.
pub const READ_PAGE: usize = 1000;

fn prefix(update_id: &str) -> String {
    format!("updates/{update_id}/events/")
}

/// What the server reads of one event: its sequence and, on a summary event, the summary.
/// Everything else stays as the client sent it, never parsed into a tree.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    sequence: Option<Json>,
    #[serde(default)]
    summary_event: Option<Json>,
}

/// A checked batch: the sequence range it covers and a summary event's resource changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Lowest and highest sequence (None for an empty batch).
    pub range: Option<(i64, i64)>,
    /// `summaryEvent.resourceChanges` of the batch's summary event, if it has one.
    pub summary: Option<Json>,
}

/// Validates a batch: objects with a non-negative integer `sequence`, none over
/// [`MAX_EVENT_BYTES`] as sent. Reads only those fields of each event (a streaming parse that
/// builds no tree of the rest), so the batch can be stored exactly as it came.
pub fn check_batch(events: &[&RawValue]) -> Result<Checked> {
    if events.len() > MAX_BATCH {
        return Err(Error::BadRequest(format!("at most {MAX_BATCH} events per batch")));
    }
    let no_sequence =
        || Error::BadRequest("every event needs a non-negative integer sequence".into());
    let mut checked = Checked { range: None, summary: None };
    for raw in events {
        let head: Head = serde_json::from_str(raw.get()).map_err(|_| no_sequence())?;
        let seq = head.sequence.as_ref().and_then(Json::as_i64).filter(|s| *s >= 0);
        let seq = seq.ok_or_else(no_sequence)?;
        let size = raw.get().len();
        if size > MAX_EVENT_BYTES {
            return Err(Error::BadRequest(format!(
                "event {seq} is {size} bytes; an event holds at most {MAX_EVENT_BYTES}"
            )));
        }
        if let Some(rc) = head.summary_event.as_ref().and_then(|s| s.get("resourceChanges")) {
            checked.summary = Some(rc.clone());
        }
        checked.range = Some(match checked.range {
            Some((lo, hi)) => (lo.min(seq), hi.max(seq)),
            None => (seq, seq),
        });
    }
    Ok(checked)
}

/// A batch's body as the client sent it (`{"events": […]}`): its gzip bytes when it was
/// compressed, and what they decode to.
pub struct Received<'a> {
    /// The body as received, if gzip.
    pub gzip: Option<&'a Bytes>,
    /// The decoded body.
    pub plain: &'a [u8],
}

/// Stores a checked batch durably, as the client sent it (gzip once if it was not already):
/// the blob is named by the batch's sequence range, and read-back orders and de-duplicates.
pub async fn store(app: &App, update_id: &str, batch: &Checked, body: Received<'_>) -> Result<()> {
    let Some((first, last)) = batch.range else { return Ok(()) };
    let key = format!("{}{first:012}-{last:012}.json.gz", prefix(update_id));
    let stored = deployments::as_received(body.gzip, body.plain)?;
    app.ports.blobs.put(&key, stored).await?;
    Ok(())
}

/// The client's form of a stored batch.
#[derive(Deserialize)]
struct ReceivedBatch {
    events: Vec<Json>,
}

/// The events of a stored blob: the client's `{"events": […]}`, or a bare `[…]` (batches
/// stored before they were kept as received).
fn read_blob(gz: &[u8]) -> Result<Vec<Json>> {
    let json = deployments::gunzip(gz)?;
    let parsed = match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice::<ReceivedBatch>(&json).map(|b| b.events),
        _ => serde_json::from_slice::<Vec<Json>>(&json),
    };
    parsed.map_err(|e| Error::caused("not an events batch", e))
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
        let events = read_blob(&gz)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn raws(text: &str) -> Vec<Box<RawValue>> {
        serde_json::from_str(text).unwrap()
    }

    fn check(text: &str) -> Result<Checked> {
        let owned = raws(text);
        let borrowed: Vec<&RawValue> = owned.iter().map(|r| r.as_ref()).collect();
        check_batch(&borrowed)
    }

    #[test]
    fn a_batch_gives_its_range_and_summary_in_any_order() {
        let c = check(
            r#"[{"sequence": 7, "timestamp": 1}, {"sequence": 3},
                {"sequence": 5, "summaryEvent": {"resourceChanges": {"create": 2}}}]"#,
        )
        .unwrap();
        assert_eq!(c.range, Some((3, 7)));
        assert_eq!(c.summary, Some(serde_json::json!({"create": 2})));
        assert_eq!(check("[]").unwrap(), Checked { range: None, summary: None });
        let plain = check(r#"[{"sequence": 0, "summaryEvent": null}]"#).unwrap();
        assert_eq!((plain.range, plain.summary), (Some((0, 0)), None));
    }

    #[test]
    fn events_without_a_good_sequence_are_refused() {
        for bad in [
            r#"[{"timestamp": 1}]"#,
            r#"[{"sequence": -1}]"#,
            r#"[{"sequence": "3"}]"#,
            r#"[{"sequence": 1.5}]"#,
            r#"[3]"#,
            r#"[{"sequence": 1, "sequence": 2}]"#,
        ] {
            assert!(matches!(check(bad), Err(Error::BadRequest(_))), "{bad}");
        }
    }

    #[test]
    fn stored_blobs_read_in_both_forms() {
        let received = deployments::gzip(br#"{"events": [{"sequence": 1}]}"#).unwrap();
        let bare = deployments::gzip(br#" [{"sequence": 2}]"#).unwrap();
        assert_eq!(read_blob(&received).unwrap(), vec![serde_json::json!({"sequence": 1})]);
        assert_eq!(read_blob(&bare).unwrap(), vec![serde_json::json!({"sequence": 2})]);
        assert!(read_blob(&deployments::gzip(b"{}").unwrap()).is_err());
    }

    proptest::proptest! {
        /// Any batch of events with any sequences and any other fields: checked without a
        /// panic, refused exactly when a sequence is negative, else covering min..=max.
        #[test]
        fn any_batch_is_checked_or_refused(
            events in proptest::collection::vec((proptest::prelude::any::<i64>(), ".{0,12}"), 0..20),
        ) {
            let text = serde_json::to_string(&events.iter().map(|(seq, note)| {
                serde_json::json!({"sequence": seq, "note": note, "nested": {"sequence": "x"}})
            }).collect::<Vec<_>>()).unwrap();
            let result = check(&text);
            if events.iter().any(|(s, _)| *s < 0) {
                proptest::prop_assert!(matches!(result, Err(Error::BadRequest(_))));
            } else {
                let seqs = events.iter().map(|(s, _)| *s);
                let range = seqs.clone().min().zip(seqs.max());
                proptest::prop_assert_eq!(result.unwrap().range, range);
            }
        }
    }
}
