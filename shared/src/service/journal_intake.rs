//! What a batch of journal entries must satisfy before the server acknowledges it
//! (`PATCH …/journalentries`): a 2xx promises the entries will be replayed, so an entry that
//! replay could not apply is refused here, while the client can still be told.
//!
//! The CLI assigns sequence IDs from a counter and sends entries as concurrent steps finish, so
//! a batch may hold them out of order and leave gaps that a later batch fills. The intake
//! therefore keeps, on the update item, a small [`Cursor`]: which sequence IDs and which
//! operations with a recorded state it has accepted (as runs), and the base length. An entry is
//! checked against the base and the operations exactly when every lower sequence ID is known;
//! otherwise its indexes are checked by the replay at `complete` (which then refuses to report
//! success). Entries already accepted may come again only as an exact retry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::journal::{EntryKind, JournalEntry};
use crate::error::{Error, Result};

/// Sorted, disjoint, non-adjacent inclusive ranges of integers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runs(Vec<(i64, i64)>);

impl Runs {
    /// Whether `n` is in the set.
    pub fn contains(&self, n: i64) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < n);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= n)
    }

    /// Adds `n`, merging neighbouring runs.
    pub fn insert(&mut self, n: i64) {
        if self.contains(n) {
            return;
        }
        // The first run starting after n; the one before it (if any) ends before n.
        let i = self.0.partition_point(|&(lo, _)| lo <= n);
        let joins_prev = i > 0 && n.checked_sub(1) == Some(self.0[i - 1].1);
        let joins_next = i < self.0.len() && n.checked_add(1) == Some(self.0[i].0);
        match (joins_prev, joins_next) {
            (true, true) => {
                self.0[i - 1].1 = self.0[i].1;
                self.0.remove(i);
            }
            (true, false) => self.0[i - 1].1 = n,
            (false, true) => self.0[i].0 = n,
            (false, false) => self.0.insert(i, (n, n)),
        }
    }

    /// Whether every integer from 1 to `n - 1` is in the set.
    pub fn has_all_below(&self, n: i64) -> bool {
        n <= 1 || self.0.first().is_some_and(|&(lo, hi)| lo <= 1 && hi >= n - 1)
    }

    /// The number of runs (a measure of how scattered the set is).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the intake remembers of an update's journal (stored as JSON on the update item).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sequence IDs accepted.
    pub seqs: Runs,
    /// Operation IDs whose `success`/`refresh-success`/`outputs` entries recorded a state.
    pub ops: Runs,
    /// Resources in the base deployment the update started from.
    pub base_len: i64,
    /// Lowest sequence ID of an accepted `write` or `rebuilt-base-state` entry: from there on
    /// the base (and, for a rebuild, the operations) are known only to the replay.
    pub base_changed_at: Option<i64>,
}

/// What to do with a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// New entries, valid: store them and record the advanced cursor.
    Accept(Cursor),
    /// Every entry was accepted before: acknowledge only if each equals the stored one.
    Retry,
}

fn bad(seq: i64, what: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("journal entry {seq}: {what}"))
}

/// Refuses an entry that no replay could apply, whatever came before it.
pub fn check_shape(e: &JournalEntry) -> Result<()> {
    let seq = e.sequence_id;
    if seq < 1 {
        return Err(Error::BadRequest(format!("journal sequence IDs start at 1, not {seq}")));
    }
    if e.version != 1 {
        return Err(bad(seq, format!("unsupported entry version {}", e.version)));
    }
    let Some(kind) = EntryKind::from_i64(e.kind) else {
        return Err(bad(seq, format!("unknown kind {}", e.kind)));
    };
    if e.operation_id < 0 {
        return Err(bad(seq, "operationID must not be negative"));
    }
    for (name, v) in [
        ("removeOld", e.remove_old),
        ("removeNew", e.remove_new),
        ("deleteOld", e.delete_old),
        ("deleteNew", e.delete_new),
        ("pendingReplacementOld", e.pending_replacement_old),
        ("pendingReplacementNew", e.pending_replacement_new),
    ] {
        if v.is_some_and(|v| v < 0) {
            return Err(bad(seq, format!("{name} must not be negative")));
        }
    }
    let object = |name: &str, v: &Option<Value>| match v {
        Some(v) if !v.is_object() => Err(bad(seq, format!("{name} must be an object"))),
        _ => Ok(()),
    };
    object("state", &e.state)?;
    object("operation", &e.operation)?;
    object("secretsProvider", &e.secrets_provider)?;
    object("newSnapshot", &e.new_snapshot)?;
    if let Some(state) = &e.state {
        for field in ["urn", "type"] {
            if !state.get(field).is_some_and(Value::is_string) {
                return Err(bad(seq, format!("state.{field} must be a string")));
            }
        }
    }
    match kind {
        EntryKind::Write => match &e.new_snapshot {
            Some(s) if s.get("resources").is_none_or(Value::is_array) => {}
            Some(_) => return Err(bad(seq, "newSnapshot.resources must be an array")),
            None => return Err(bad(seq, "a write entry needs newSnapshot")),
        },
        EntryKind::ExtensionParameterize if e.extension_ref.is_none() || e.extension.is_none() => {
            return Err(bad(
                seq,
                "an extension-parameterize entry needs extensionRef and extension",
            ))
        }
        _ => {}
    }
    Ok(())
}

/// Whether replay indexes the entry's state under its operation ID (only `success` does;
/// `refresh-success` and `outputs` replace a state already indexed).
fn records_state(e: &JournalEntry) -> bool {
    e.state.is_some() && EntryKind::from_i64(e.kind) == Some(EntryKind::Success)
}

/// The index fields replay reads for this entry's kind, as (base indexes, operation IDs):
/// the others are ignored by replay, so they are not judged here either.
type Fields = (Vec<(&'static str, Option<i64>)>, Vec<(&'static str, Option<i64>)>);
fn index_fields(e: &JournalEntry) -> Fields {
    match EntryKind::from_i64(e.kind) {
        Some(EntryKind::Success) => (
            vec![
                ("removeOld", e.remove_old),
                ("deleteOld", e.delete_old),
                ("pendingReplacementOld", e.pending_replacement_old),
            ],
            vec![
                ("removeNew", e.remove_new),
                ("deleteNew", e.delete_new),
                ("pendingReplacementNew", e.pending_replacement_new),
            ],
        ),
        Some(EntryKind::RefreshSuccess) => {
            (vec![("removeOld", e.remove_old)], vec![("removeNew", e.remove_new)])
        }
        // Without a state an outputs entry changes nothing (and is not checked by replay).
        Some(EntryKind::Outputs) if e.state.is_some() => {
            (vec![("removeOld", e.remove_old)], vec![("removeNew", e.remove_new)])
        }
        _ => (vec![], vec![]),
    }
}

impl Cursor {
    /// The cursor of a journal that replays onto a base of `base_len` resources.
    pub fn start(base_len: i64) -> Cursor {
        Cursor { base_len, ..Cursor::default() }
    }

    /// Decides on one batch: 400 for an entry no replay could apply (or a sequence ID sent
    /// twice with different bodies in the batch), 409 for a batch that mixes entries accepted
    /// before with new ones.
    pub fn check(&self, entries: &[JournalEntry]) -> Result<Intake> {
        let mut batch: BTreeMap<i64, &JournalEntry> = BTreeMap::new();
        for e in entries {
            check_shape(e)?;
            match batch.get(&e.sequence_id) {
                Some(other) if *other != e => {
                    return Err(bad(e.sequence_id, "sent twice in one batch with different bodies"))
                }
                _ => {
                    batch.insert(e.sequence_id, e);
                }
            }
        }
        let seen = batch.keys().filter(|s| self.seqs.contains(**s)).count();
        if seen == batch.len() {
            return Ok(Intake::Retry);
        }
        if seen > 0 {
            return Err(Error::Conflict(
                "the batch repeats journal entries already recorded together with new ones".into(),
            ));
        }
        let mut next = self.clone();
        for (&seq, e) in &batch {
            // Every lower sequence ID is known: the base and the operations are exactly those
            // the replay will see when it reaches this entry.
            let known = next.seqs.has_all_below(seq);
            let kind = EntryKind::from_i64(e.kind);
            if known && next.base_changed_at.is_none_or(|at| at > seq) {
                let (base_fields, op_fields) = index_fields(e);
                for (name, v) in base_fields {
                    if let Some(i) = v.filter(|i| *i >= next.base_len) {
                        return Err(bad(
                            seq,
                            format!("{name} {i} is outside the base ({} resources)", next.base_len),
                        ));
                    }
                }
                // A success entry may name the operation whose state it records itself.
                let own = records_state(e).then_some(e.operation_id);
                for (name, v) in op_fields {
                    if let Some(op) = v.filter(|op| Some(*op) != own && !next.ops.contains(*op)) {
                        return Err(bad(
                            seq,
                            format!("{name} names operation {op}, which recorded no resource"),
                        ));
                    }
                }
            }
            if matches!(kind, Some(EntryKind::Write | EntryKind::RebuiltBaseState)) {
                next.base_changed_at = Some(next.base_changed_at.map_or(seq, |at| at.min(seq)));
            }
            if records_state(e) {
                next.ops.insert(e.operation_id);
            }
            next.seqs.insert(seq);
        }
        Ok(Intake::Accept(next))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(v: Value) -> JournalEntry {
        serde_json::from_value(v).expect("entry")
    }

    fn success(seq: i64, op: i64) -> JournalEntry {
        entry(json!({"version": 1, "kind": 1, "sequenceID": seq, "operationID": op,
            "removeOld": null, "removeNew": null,
            "state": {"urn": format!("urn:pulumi:s::p::t::r{op}"), "type": "t", "custom": true}}))
    }

    fn accept(c: &Cursor, entries: &[JournalEntry]) -> Cursor {
        match c.check(entries) {
            Ok(Intake::Accept(next)) => next,
            other => panic!("not accepted: {other:?}"),
        }
    }

    #[test]
    fn runs_merge_and_answer() {
        let mut r = Runs::default();
        for n in [5, 1, 3, 2, 7, 4] {
            r.insert(n);
        }
        assert_eq!(r.0, vec![(1, 5), (7, 7)]);
        assert!(r.has_all_below(6) && !r.has_all_below(8));
        r.insert(6);
        assert_eq!(r.0, vec![(1, 7)]);
        assert!(r.contains(6) && !r.contains(8) && !r.contains(0));
    }

    #[test]
    fn out_of_order_batches_are_accepted_and_gaps_fill_later() {
        let c = Cursor::start(0);
        let c = accept(&c, &[success(2, 2), success(1, 1), success(4, 4)]);
        let c = accept(&c, &[success(3, 3)]);
        assert!(c.seqs.has_all_below(5));
        assert_eq!(c.check(&[success(3, 3)]).ok(), Some(Intake::Retry));
    }

    #[test]
    fn what_replay_cannot_apply_is_refused() {
        let c = Cursor::start(2);
        let refuse = |v: Value| c.check(&[entry(v)]).expect_err("refused");
        refuse(json!({"kind": 12, "sequenceID": 1, "operationID": 1}));
        refuse(json!({"kind": 1, "sequenceID": 1, "operationID": 1, "removeOld": 2}));
        refuse(json!({"kind": 1, "sequenceID": 1, "operationID": 1, "removeNew": 9}));
        refuse(json!({"kind": 5, "sequenceID": 1, "operationID": 0, "newSnapshot": [1]}));
        refuse(json!({"kind": 5, "sequenceID": 1, "operationID": 0}));
        refuse(json!({"kind": 1, "sequenceID": 1, "operationID": 1, "state": "x"}));
        refuse(json!({"kind": 1, "sequenceID": 0, "operationID": 1}));
        refuse(json!({"version": 2, "kind": 1, "sequenceID": 1, "operationID": 1}));
        // In range, or a state recorded by an earlier entry: fine.
        let c = accept(
            &c,
            &[entry(json!({"kind": 1, "sequenceID": 1, "operationID": 1, "removeOld": 1}))],
        );
        let c = accept(&c, &[success(2, 7)]);
        accept(&c, &[entry(json!({"kind": 1, "sequenceID": 3, "operationID": 8, "deleteNew": 7}))]);
    }

    #[test]
    fn indexes_after_a_gap_or_a_new_base_are_left_to_replay() {
        let c = Cursor::start(0);
        // Sequence 1 is missing: the base may yet change, so the index is not judged now.
        accept(&c, &[entry(json!({"kind": 1, "sequenceID": 2, "operationID": 1, "removeOld": 5}))]);
        let write = entry(json!({"kind": 5, "sequenceID": 1, "operationID": 0,
            "newSnapshot": {"resources": [{}, {}, {}, {}, {}, {}]}}));
        let c = accept(&c, &[write]);
        accept(&c, &[entry(json!({"kind": 1, "sequenceID": 2, "operationID": 1, "removeOld": 5}))]);
    }

    #[test]
    fn retries_must_be_whole_and_mixed_batches_conflict() {
        let c = accept(&Cursor::start(0), &[success(1, 1), success(2, 2)]);
        assert_eq!(c.check(&[success(2, 2), success(1, 1)]).ok(), Some(Intake::Retry));
        assert!(matches!(c.check(&[success(2, 2), success(3, 3)]), Err(Error::Conflict(_))));
        let mut changed = success(3, 3);
        changed.operation_id = 4;
        assert!(c.check(&[success(3, 3), changed]).is_err(), "same sequence, different bodies");
    }
}
