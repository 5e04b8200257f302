//! What a batch of journal entries must satisfy before the server acknowledges it
//! (`PATCH …/journalentries`): a 2xx promises the entries will be replayed, so an entry that
//! replay could not apply is refused here, while the client can still be told.
//!
//! The CLI assigns sequence IDs from a counter and sends entries as concurrent steps finish, so
//! a batch may hold them out of order and leave gaps that a later batch fills. The intake
//! therefore keeps, on the update item, a small [`Cursor`]: the sequence IDs it accepted (as
//! runs), the [`Shape`] the replay has after the gap-free prefix of the journal (base length,
//! operations with a recorded state, what was dropped), and the few entries accepted past a gap
//! as [`Step`]s. Entries are judged in sequence order against that shape, exactly as replay
//! will meet them: an entry past a gap waits, and when a batch fills the gap the waiting
//! entries are judged with it, so a batch that would make an accepted entry unreplayable is
//! refused instead. Entries already accepted may come again only as an exact retry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::journal::{EntryKind, JournalEntry};
use crate::error::{Error, Result};

/// Entries accepted past a gap that the cursor holds at most. The CLI's gaps come from a few
/// concurrent steps (batches of at most 100 go out one at a time), so a real journal keeps a
/// handful here; the bound keeps the cursor far below DynamoDB's 400 KB item size.
pub const MAX_AHEAD: usize = 1_000;

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

    /// How many integers below `n` the set holds.
    pub fn count_below(&self, n: i64) -> i64 {
        self.0
            .iter()
            .take_while(|&&(lo, _)| lo < n)
            .map(|&(lo, hi)| hi.min(n.saturating_sub(1)).saturating_sub(lo).saturating_add(1))
            .fold(0i64, i64::saturating_add)
    }

    /// How many integers the set holds.
    pub fn count(&self) -> i64 {
        self.count_below(i64::MAX).saturating_add(i64::from(self.contains(i64::MAX)))
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sequence IDs accepted.
    pub seqs: Runs,
    /// The lowest sequence ID not yet judged: every lower one was accepted and is in `shape`.
    pub next: i64,
    /// The replay's shape after the entries below `next`.
    pub shape: Shape,
    /// Entries accepted past a gap, in sequence order, waiting for the gap to fill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ahead: Vec<Step>,
}

/// As much of the replay's state as judging the next entry's indexes needs
/// (`service::journal::Replayer` holds the rest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Resources in the base the `*Old` indexes point into; `None` when the update started
    /// from a stored state whose length was not recorded (then only replay judges them).
    pub base_len: Option<i64>,
    /// Operations whose `success` entry recorded a state since the base was last rebuilt.
    pub ops: Runs,
    /// New resources recorded since the last rebuild (an operation may record more than one).
    pub new_count: i64,
    /// Operations whose new resource is dropped at the end.
    pub removed_ops: Runs,
    /// Base indexes dropped at the end.
    pub removed_old: Runs,
}

/// The part of an entry the shape needs: its indexes and what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    #[serde(rename = "s")]
    seq: i64,
    #[serde(rename = "k")]
    kind: i64,
    #[serde(rename = "o")]
    op: i64,
    /// Whether the entry carries a state.
    #[serde(rename = "st", default, skip_serializing_if = "is_false")]
    state: bool,
    /// `removeOld`, `deleteOld`, `pendingReplacementOld`.
    #[serde(rename = "old", default, skip_serializing_if = "no_indexes")]
    old: [Option<i64>; 3],
    /// `removeNew`, `deleteNew`, `pendingReplacementNew`.
    #[serde(rename = "new", default, skip_serializing_if = "no_indexes")]
    new: [Option<i64>; 3],
    /// Resources in a `write` entry's new snapshot.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    written: Option<i64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn no_indexes(v: &[Option<i64>; 3]) -> bool {
    v.iter().all(Option::is_none)
}

const OLD_NAMES: [&str; 3] = ["removeOld", "deleteOld", "pendingReplacementOld"];
const NEW_NAMES: [&str; 3] = ["removeNew", "deleteNew", "pendingReplacementNew"];

impl Step {
    fn of(e: &JournalEntry) -> Step {
        let kind = EntryKind::from_i64(e.kind);
        // Only the index fields replay reads for this kind; it ignores the others.
        let (old, new) = match kind {
            Some(EntryKind::Success) => (
                [e.remove_old, e.delete_old, e.pending_replacement_old],
                [e.remove_new, e.delete_new, e.pending_replacement_new],
            ),
            Some(EntryKind::RefreshSuccess) => {
                ([e.remove_old, None, None], [e.remove_new, None, None])
            }
            // Without a state an outputs entry changes nothing (and is not checked by replay).
            Some(EntryKind::Outputs) if e.state.is_some() => {
                ([e.remove_old, None, None], [e.remove_new, None, None])
            }
            _ => ([None; 3], [None; 3]),
        };
        let written = match kind {
            Some(EntryKind::Write) => Some(
                e.new_snapshot
                    .as_ref()
                    .and_then(|s| s.get("resources"))
                    .and_then(Value::as_array)
                    .map_or(0, |r| r.len() as i64),
            ),
            _ => None,
        };
        Step {
            seq: e.sequence_id,
            kind: e.kind,
            op: e.operation_id,
            state: e.state.is_some(),
            old,
            new,
            written,
        }
    }

    /// Whether replay, having reached `shape`, can apply this entry.
    fn judge(&self, shape: &Shape) -> std::result::Result<(), String> {
        if let Some(len) = shape.base_len {
            for (name, i) in OLD_NAMES.iter().zip(self.old) {
                if let Some(i) = i.filter(|i| *i >= len) {
                    return Err(format!("{name} {i} is outside the base ({len} resources)"));
                }
            }
        }
        // A success entry may name the operation whose state it records itself.
        let own = self.records_state().then_some(self.op);
        for (name, op) in NEW_NAMES.iter().zip(self.new) {
            if let Some(op) = op.filter(|op| Some(*op) != own && !shape.ops.contains(*op)) {
                return Err(format!("{name} names operation {op}, which recorded no resource"));
            }
        }
        Ok(())
    }

    /// Replay indexes the state of a `success` entry under its operation ID; `refresh-success`
    /// and `outputs` replace a state already indexed.
    fn records_state(&self) -> bool {
        self.state && EntryKind::from_i64(self.kind) == Some(EntryKind::Success)
    }

    /// What replay does to the shape when it applies this entry.
    fn apply(&self, shape: &mut Shape) {
        match EntryKind::from_i64(self.kind) {
            Some(EntryKind::Success) => {
                if self.state {
                    shape.ops.insert(self.op);
                    shape.new_count = shape.new_count.saturating_add(1);
                }
                if let Some(i) = self.old[0] {
                    shape.removed_old.insert(i);
                }
                if let Some(op) = self.new[0] {
                    shape.removed_ops.insert(op);
                }
            }
            // Without a state the refreshed resource is gone; with one it is replaced in place.
            Some(EntryKind::RefreshSuccess) if !self.state => {
                if let Some(i) = self.old[0] {
                    shape.removed_old.insert(i);
                }
                if let Some(op) = self.new[0] {
                    shape.removed_ops.insert(op);
                }
            }
            Some(EntryKind::Write) => shape.base_len = self.written,
            Some(EntryKind::RebuiltBaseState) => {
                // The generated deployment becomes the base: the new resources not dropped,
                // then the base resources not dropped; operations start over.
                let base_len = shape.base_len.map(|len| {
                    let kept_new = shape.new_count.saturating_sub(shape.removed_ops.count());
                    let kept_old = len.saturating_sub(shape.removed_old.count_below(len));
                    kept_new.saturating_add(kept_old)
                });
                *shape = Shape { base_len, ..Shape::default() };
            }
            _ => {}
        }
    }
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
        EntryKind::Write => {
            let Some(snapshot) = &e.new_snapshot else {
                return Err(bad(seq, "a write entry needs newSnapshot"));
            };
            match snapshot.get("resources") {
                None | Some(Value::Null) => {}
                Some(Value::Array(r)) if r.iter().all(Value::is_object) => {}
                Some(_) => return Err(bad(seq, "newSnapshot.resources must be a list of objects")),
            }
            if !snapshot.get("pending_operations").is_none_or(|p| p.is_null() || p.is_array()) {
                return Err(bad(seq, "newSnapshot.pending_operations must be a list"));
            }
        }
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

impl Cursor {
    /// The cursor of a journal that replays onto a base of `base_len` resources (`None`:
    /// unknown).
    pub fn start(base_len: Option<i64>) -> Cursor {
        Cursor {
            seqs: Runs::default(),
            next: 1,
            shape: Shape { base_len, ..Shape::default() },
            ahead: Vec::new(),
        }
    }

    /// Decides on one batch: 400 for an entry no replay could apply (or a sequence ID sent
    /// twice with different bodies in the batch, or one that would make an entry accepted
    /// earlier unreplayable), 409 for a batch that mixes entries accepted before with new ones.
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
        // The waiting entries and this batch, in the order replay will meet them.
        let mut waiting: BTreeMap<i64, (Step, bool)> =
            self.ahead.iter().map(|s| (s.seq, (s.clone(), false))).collect();
        for (&seq, e) in &batch {
            next.seqs.insert(seq);
            waiting.insert(seq, (Step::of(e), true));
        }
        while let Some((step, new)) = waiting.remove(&next.next) {
            step.judge(&next.shape).map_err(|what| match new {
                true => bad(step.seq, what),
                false => bad(
                    step.seq,
                    format!("accepted earlier, and after this batch it cannot apply: {what}"),
                ),
            })?;
            step.apply(&mut next.shape);
            next.next = next.next.saturating_add(1);
        }
        if waiting.len() > MAX_AHEAD {
            return Err(Error::BadRequest(format!(
                "journal entry {} is missing and more than {MAX_AHEAD} later entries wait for it",
                next.next
            )));
        }
        next.ahead = waiting.into_values().map(|(s, _)| s).collect();
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
        let c = Cursor::start(Some(0));
        let c = accept(&c, &[success(2, 2), success(1, 1), success(4, 4)]);
        let c = accept(&c, &[success(3, 3)]);
        assert!(c.seqs.has_all_below(5));
        assert_eq!(c.check(&[success(3, 3)]).ok(), Some(Intake::Retry));
    }

    #[test]
    fn what_replay_cannot_apply_is_refused() {
        let c = Cursor::start(Some(2));
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

    fn write(seq: i64, resources: usize) -> JournalEntry {
        entry(json!({"kind": 5, "sequenceID": seq, "operationID": 0,
            "newSnapshot": {"resources": vec![json!({}); resources]}}))
    }

    #[test]
    fn entries_past_a_gap_wait_and_are_judged_when_it_fills() {
        let c = Cursor::start(Some(0));
        // Sequence 1 is missing: the base may yet change, so the index is not judged now.
        let past = entry(json!({"kind": 1, "sequenceID": 2, "operationID": 1, "removeOld": 5}));
        let waiting = accept(&c, std::slice::from_ref(&past));
        assert_eq!(waiting.ahead.len(), 1);
        // A new base of six resources makes it valid...
        let c2 = accept(&waiting, &[write(1, 6)]);
        assert!(c2.ahead.is_empty() && c2.next == 3);
        // ...one of three would strand it, so the batch that fills the gap is refused.
        let err = waiting.check(&[write(1, 3)]).expect_err("refused");
        assert!(err.to_string().contains("accepted earlier"), "{err}");
    }

    #[test]
    fn a_rebuilt_base_has_the_generated_length_and_forgets_operations() {
        // Base of 3; create 2 (ops 1, 2), drop base 0 and new op 2: the rebuild keeps 1 + 2.
        let c = Cursor::start(Some(3));
        let c = accept(&c, &[success(1, 1), success(2, 2)]);
        let c = accept(
            &c,
            &[entry(json!({"kind": 1, "sequenceID": 3, "operationID": 3, "removeOld": 0}))],
        );
        let c = accept(
            &c,
            &[entry(json!({"kind": 1, "sequenceID": 4, "operationID": 4, "removeNew": 2}))],
        );
        let c = accept(&c, &[entry(json!({"kind": 7, "sequenceID": 5, "operationID": 0}))]);
        assert_eq!(c.shape.base_len, Some(3));
        accept(&c, &[entry(json!({"kind": 1, "sequenceID": 6, "operationID": 5, "removeOld": 2}))]);
        c.check(&[entry(json!({"kind": 1, "sequenceID": 6, "operationID": 5, "removeOld": 3}))])
            .expect_err("past the rebuilt base");
        c.check(&[entry(json!({"kind": 3, "sequenceID": 6, "operationID": 5, "removeNew": 1}))])
            .expect_err("operation 1 was folded into the base");
    }

    #[test]
    fn a_gap_holds_a_bounded_number_of_entries() {
        let c = Cursor::start(Some(0));
        let many: Vec<JournalEntry> = (2..=MAX_AHEAD as i64 + 1).map(|s| success(s, s)).collect();
        let c = accept(&c, &many);
        let err = c.check(&[success(MAX_AHEAD as i64 + 2, 1)]).expect_err("too many wait");
        assert!(err.to_string().contains("is missing"), "{err}");
        assert!(accept(&c, &[success(1, 1)]).ahead.is_empty());
    }

    #[test]
    fn runs_count() {
        let mut r = Runs::default();
        for n in [1, 2, 3, 7, 9, 10] {
            r.insert(n);
        }
        assert_eq!(
            (r.count(), r.count_below(3), r.count_below(8), r.count_below(100)),
            (6, 2, 4, 6)
        );
    }

    #[test]
    fn retries_must_be_whole_and_mixed_batches_conflict() {
        let c = accept(&Cursor::start(Some(0)), &[success(1, 1), success(2, 2)]);
        assert_eq!(c.check(&[success(2, 2), success(1, 1)]).ok(), Some(Intake::Retry));
        assert!(matches!(c.check(&[success(2, 2), success(3, 3)]), Err(Error::Conflict(_))));
        let mut changed = success(3, 3);
        changed.operation_id = 4;
        assert!(c.check(&[success(3, 3), changed]).is_err(), "same sequence, different bodies");
    }
}
