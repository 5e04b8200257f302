//! Journal intake and replay: batches of entries (generated, or parsed from raw JSON) go through
//! the intake check the `journalentries` route makes; every batch it acknowledges must replay,
//! and the acknowledged journal must always produce a snapshot. A 2xx is never followed by an
//! entry the replay drops.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use stackhouse::service::journal::{JournalEntry, Replayer};
use stackhouse::service::journal_intake::{Cursor, Intake};

fn resource(op: i64) -> Value {
    json!({"urn": format!("urn:pulumi:s::p::t::n{op}"), "type": "t", "custom": true})
}

fn small(u: &mut Unstructured) -> Result<i64> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 => u.arbitrary::<i64>()?,
        1 => -1,
        _ => u.int_in_range(0i64..=6)?,
    })
}

fn maybe(u: &mut Unstructured) -> Result<Option<i64>> {
    Ok(if u.ratio(1u8, 4)? { Some(small(u)?) } else { None })
}

/// One entry with every field the wire format has, mostly plausible, sometimes not.
fn entry(u: &mut Unstructured, seq: i64) -> Result<JournalEntry> {
    let op = small(u)?;
    let kind = if u.ratio(1u8, 16)? { small(u)? } else { u.int_in_range(0i64..=8)? };
    let sequence_id = if u.ratio(1u8, 8)? { small(u)? } else { seq };
    let state = match u.int_in_range(0u8..=5)? {
        0 => Some(json!(u.arbitrary::<String>()?)),
        1 | 2 => None,
        _ => Some(resource(op)),
    };
    let operation = if u.ratio(1u8, 3)? {
        Some(json!({"resource": resource(op), "type": "creating"}))
    } else {
        None
    };
    let mut v = json!({
        "kind": kind,
        "sequenceID": sequence_id,
        "operationID": op,
        "removeOld": maybe(u)?,
        "removeNew": maybe(u)?,
        "pendingReplacementOld": maybe(u)?,
        "pendingReplacementNew": maybe(u)?,
        "deleteOld": maybe(u)?,
        "deleteNew": maybe(u)?,
        "isRefresh": u.arbitrary::<bool>()?,
    });
    if let Some(s) = state {
        v["state"] = s;
    }
    if let Some(o) = operation {
        v["operation"] = o;
    }
    if u.ratio(1u8, 12)? {
        v["newSnapshot"] = json!({"resources": [resource(op)]});
    }
    if u.ratio(1u8, 16)? {
        v["version"] = json!(small(u)?);
    }
    // An entry the wire cannot carry is not an input the intake ever sees.
    // A shape the wire cannot carry becomes a plain `write` entry.
    Ok(serde_json::from_value(v).unwrap_or_else(|_| JournalEntry {
        kind: 2,
        sequence_id: seq,
        ..JournalEntry::default()
    }))
}

fn batches(u: &mut Unstructured) -> Result<Vec<Vec<JournalEntry>>> {
    let mut seq = 1;
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(1usize..=6)? {
        let mut batch = Vec::new();
        for _ in 0..u.int_in_range(1usize..=5)? {
            batch.push(entry(u, seq)?);
            seq += 1;
        }
        // The CLI sends entries concurrently: within a batch they may be out of order.
        if u.ratio(1u8, 4)? {
            batch.reverse();
        }
        // A retry of the previous batch, or a skipped sequence number.
        match u.int_in_range(0u8..=9)? {
            0 => {
                if let Some(prev) = out.last().cloned() {
                    out.push(prev);
                }
            }
            1 => seq += 1,
            _ => {}
        }
        out.push(batch);
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    // Raw JSON (a list of batches) exercises the wire parser; anything else is structured.
    let parsed = if data.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<Vec<JournalEntry>>>(data).ok()
    } else {
        None
    };
    let mut u = Unstructured::new(data);
    let (base_len, input) = match parsed {
        Some(b) => (1, b),
        None => {
            let Ok(n) = u.int_in_range(0usize..=3) else { return };
            let Ok(b) = batches(&mut u) else { return };
            (n, b)
        }
    };
    let base = json!({
        "manifest": {"time": "t", "magic": "", "version": ""},
        "resources": (0..base_len).map(|i| json!({"urn": format!("urn:pulumi:s::p::t::b{i}"), "type": "t", "custom": true})).collect::<Vec<_>>(),
    });
    let mut cursor = Cursor::start(Some(base_len as i64));
    let Ok(mut replayer) = Replayer::new(base) else { panic!("base refused") };
    let mut acknowledged: Vec<JournalEntry> = Vec::new();
    for batch in &input {
        match cursor.check(batch) {
            Ok(Intake::Accept(next)) => {
                cursor = next;
                if let Err(e) = replayer.apply(batch) {
                    panic!("acknowledged, not replayable: {batch:?}: {e}");
                }
                acknowledged.extend(batch.iter().cloned());
            }
            Ok(Intake::Retry) => {
                // Only a batch whose every sequence was acknowledged is a retry.
                for e in batch {
                    assert!(
                        acknowledged.iter().any(|a| a.sequence_id == e.sequence_id),
                        "new entry {} taken for a retry",
                        e.sequence_id
                    );
                }
            }
            Err(_) => {}
        }
    }
    // What the intake holds back past a gap is exactly what the replay holds back.
    assert_eq!(cursor.ahead.len(), replayer.buffered(), "intake and replay disagree on the gap");
    if let Err(e) = replayer.snapshot(json!({})) {
        panic!("the acknowledged journal has no snapshot: {e}");
    }
});
