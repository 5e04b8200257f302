//! Property tests of the parsers of client input: random (and hostile) input never panics, and
//! whatever the server accepts it can read back, replay and apply. Failing cases proptest
//! finds are kept in `shared/proptest-regressions/` and replayed first on every run.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::delta::{apply_delta, Pos, Span, TextEdit};
use super::deployments::check_untyped;
use super::journal::{JournalEntry, Replayer};
use super::journal_intake::{Cursor, Intake};
use super::limits::{json_depth_exceeds, MAX_JSON_DEPTH};

/// JSON values up to `depth` levels, with strings full of brackets, quotes and backslashes.
fn json_tree(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[\\[\\]{}\"\\\\a-z:,]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 256, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\\[{\"]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn depth_of(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

fn nest(v: Value, levels: usize) -> Value {
    (0..levels).fold(v, |v, _| json!([v]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The byte scan measures exactly the nesting serde sees, whatever the strings hold.
    #[test]
    fn depth_scan_matches_the_parse(tree in json_tree(6), extra in 0usize..120) {
        let v = nest(tree, extra);
        let text = v.to_string();
        let depth = depth_of(&v);
        prop_assert_eq!(json_depth_exceeds(text.as_bytes(), depth), false);
        if depth > 0 {
            prop_assert!(json_depth_exceeds(text.as_bytes(), depth - 1));
        }
    }

    /// Arbitrary bytes never panic the validator; what it accepts is a readable deployment,
    /// even nested inside the server's own envelopes.
    #[test]
    fn accepted_deployments_read_back(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        tree in json_tree(5),
        depth in 0usize..140,
        version in -1i64..6,
    ) {
        let _ = check_untyped(&bytes, 1..=4);
        let doc = json!({"version": version, "deployment": {"resources": [{"outputs": nest(tree, depth)}]}});
        let text = doc.to_string();
        if check_untyped(text.as_bytes(), 1..=4).is_ok() {
            prop_assert!((1..=4).contains(&version));
            prop_assert!(depth_of(&doc["deployment"]) <= MAX_JSON_DEPTH);
            let wrapped = format!("{{\"snapshot\":{{\"base\":{text}}}}}");
            prop_assert!(serde_json::from_str::<Value>(&wrapped).is_ok());
        }
    }

    /// Any edits, however hostile, are applied or refused, never a panic; valid ones splice
    /// exactly as a reference implementation does.
    #[test]
    fn deltas_apply_or_are_refused(
        base in prop::collection::vec(any::<u8>(), 0..64),
        raw in prop::collection::vec((-4i64..80, -4i64..80, "[a-z]{0,5}"), 0..6),
    ) {
        let edit = |s: i64, e: i64, t: &str| TextEdit {
            span: Span {
                uri: None,
                start: Pos { line: 1, column: 1, offset: s },
                end: Pos { line: 1, column: 1, offset: e },
            },
            new_text: t.to_string(),
        };
        let edits: Vec<TextEdit> = raw.iter().map(|(s, e, t)| edit(*s, *e, t)).collect();
        let _ = apply_delta(&base, &edits);
        // Valid edits: sorted, in range, not overlapping.
        let mut cuts: Vec<usize> =
            raw.iter().map(|(s, _, _)| (s.unsigned_abs() as usize) % (base.len() + 1)).collect();
        cuts.sort_unstable();
        let mut valid = Vec::new();
        let mut expected = Vec::new();
        let mut cursor = 0usize;
        for (i, pair) in cuts.chunks(2).enumerate() {
            let (s, e) = (pair[0], *pair.get(1).unwrap_or(&pair[0]));
            let text = raw[i].2.as_str();
            valid.push(edit(s as i64, e as i64, text));
            expected.extend_from_slice(&base[cursor..s]);
            expected.extend_from_slice(text.as_bytes());
            cursor = e;
        }
        expected.extend_from_slice(&base[cursor..]);
        prop_assert_eq!(apply_delta(&base, &valid).ok(), Some(expected));
    }

    /// What the journal intake acknowledges, in order, the replay applies: a 2xx is never
    /// followed by a silently dropped entry.
    #[test]
    fn acknowledged_journal_entries_replay(
        base_len in 0usize..4,
        steps in prop::collection::vec((0u8..8, 0i64..6, 0i64..6), 1..24),
        batch in 1usize..5,
    ) {
        let base = json!({
            "manifest": {"time": "t", "magic": "", "version": ""},
            "resources": (0..base_len).map(|i| json!({"urn": format!("urn:pulumi:s::p::t::b{i}"), "type": "t", "custom": true})).collect::<Vec<_>>(),
        });
        let state = |op: i64| json!({"urn": format!("urn:pulumi:s::p::t::n{op}"), "type": "t", "custom": true});
        let entries: Vec<JournalEntry> = steps
            .iter()
            .enumerate()
            .map(|(i, &(kind, op, index))| {
                let seq = i as i64 + 1;
                let v = match kind {
                    0 => json!({"kind": 0, "sequenceID": seq, "operationID": op, "operation": {"resource": state(op), "type": "creating"}}),
                    1 => json!({"kind": 1, "sequenceID": seq, "operationID": op, "state": state(op)}),
                    2 => json!({"kind": 1, "sequenceID": seq, "operationID": op, "removeOld": index}),
                    3 => json!({"kind": 1, "sequenceID": seq, "operationID": op, "removeNew": index}),
                    4 => json!({"kind": 1, "sequenceID": seq, "operationID": op, "deleteNew": index, "state": state(op)}),
                    5 => json!({"kind": 3, "sequenceID": seq, "operationID": op, "removeOld": index, "state": state(op)}),
                    6 => json!({"kind": 4, "sequenceID": seq, "operationID": op, "removeNew": index, "state": state(op)}),
                    _ => json!({"kind": 2, "sequenceID": seq, "operationID": op}),
                };
                serde_json::from_value(v).expect("entry")
            })
            .collect();
        let mut cursor = Cursor::start(Some(base_len as i64));
        let mut replayer = Replayer::new(base).expect("base");
        for chunk in entries.chunks(batch) {
            match cursor.check(chunk) {
                Ok(Intake::Accept(next)) => {
                    cursor = next;
                    let applied = replayer.apply(chunk);
                    prop_assert!(applied.is_ok(), "acknowledged, not replayable: {:?} {:?}", chunk, applied.err());
                }
                Ok(Intake::Retry) => prop_assert!(false, "new entries taken for a retry"),
                // Refused: the client is told, and sends the rest in a new batch (as here) or
                // gives up; the replay never sees the refused entries.
                Err(_) => break,
            }
        }
        let generated = replayer.snapshot(json!({}));
        prop_assert!(generated.is_ok(), "snapshot failed: {:?}", generated.err());
    }
}
