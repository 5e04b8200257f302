//! Replay tests: entry semantics against journal.go, ordering, resumption, and generated
//! deployments.

use super::entry::*;
use super::replay::*;
use super::snapshot::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

// ---- helpers -------------------------------------------------------------------------

fn urn(name: &str) -> String {
    format!("urn:pulumi:dev::proj::pkg:m:typ::{name}")
}

fn res(name: &str) -> Value {
    json!({"urn": urn(name), "custom": true, "type": "pkg:m:typ", "id": format!("id-{name}")})
}

fn with(mut resource: Value, key: &str, value: Value) -> Value {
    resource.as_object_mut().unwrap().insert(key.to_string(), value);
    resource
}

fn res_deps(name: &str, deps: &[&str]) -> Value {
    let deps: Vec<String> = deps.iter().map(|d| urn(d)).collect();
    with(res(name), "dependencies", json!(deps))
}

fn manifest() -> Value {
    json!({"time": "2026-01-01T00:00:00Z", "magic": "abc", "version": "v3.999.0"})
}

fn deployment(resources: Vec<Value>) -> Value {
    json!({"manifest": manifest(), "metadata": {}, "resources": resources})
}

fn operation(resource: &Value, kind: &str) -> Value {
    json!({"resource": resource, "type": kind})
}

/// Builds journals with automatically increasing sequence IDs, like the engine does.
#[derive(Default)]
struct Journal {
    entries: Vec<JournalEntry>,
}

impl Journal {
    fn push(&mut self, kind: EntryKind, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        let mut entry = JournalEntry {
            kind: kind.as_i64(),
            sequence_id: self.entries.len() as i64 + 1,
            operation_id: op,
            ..JournalEntry::default()
        };
        f(&mut entry);
        self.entries.push(entry);
        self
    }
    fn begin(&mut self, op: i64, operation: Option<Value>) -> &mut Self {
        self.push(EntryKind::Begin, op, |e| e.operation = operation)
    }
    fn success(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        self.push(EntryKind::Success, op, f)
    }
    fn failure(&mut self, op: i64) -> &mut Self {
        self.push(EntryKind::Failure, op, |_| {})
    }
    fn refresh(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        self.push(EntryKind::RefreshSuccess, op, f)
    }
    fn outputs(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        self.push(EntryKind::Outputs, op, f)
    }
    /// Same step on base resource `index` producing `state`.
    fn same_old(&mut self, op: i64, index: i64, state: Value) -> &mut Self {
        self.begin(op, None).success(op, |e| {
            e.state = Some(state);
            e.remove_old = Some(index);
        })
    }
    fn create(&mut self, op: i64, state: Value) -> &mut Self {
        let begin = operation(&state, "creating");
        self.begin(op, Some(begin)).success(op, |e| e.state = Some(state))
    }
    fn update_old(&mut self, op: i64, index: i64, state: Value) -> &mut Self {
        let begin = operation(&state, "updating");
        self.begin(op, Some(begin)).success(op, |e| {
            e.state = Some(state);
            e.remove_old = Some(index);
        })
    }
    fn delete_old(&mut self, op: i64, index: i64, old: &Value) -> &mut Self {
        self.begin(op, Some(operation(old, "deleting"))).success(op, |e| {
            e.remove_old = Some(index);
        })
    }
}

fn replay(base: Value, entries: &[JournalEntry]) -> (i64, Vec<String>, Value) {
    let mut replayer = Replayer::new(base).unwrap();
    replayer.apply(entries).unwrap();
    let Snapshot { version, features, deployment } = replayer.snapshot(manifest()).unwrap();
    (version, features, deployment)
}

fn resources(d: &Value) -> Vec<Value> {
    d.get("resources").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn urns(d: &Value) -> Vec<String> {
    resources(d).iter().map(|r| r["urn"].as_str().unwrap().to_string()).collect()
}

fn pending(d: &Value) -> Vec<(String, String)> {
    d.get("pending_operations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|op| {
            let urn = op["resource"]["urn"].as_str().unwrap().to_string();
            (urn, op["type"].as_str().unwrap().to_string())
        })
        .collect()
}

// ---- entry envelope ------------------------------------------------------------------

#[test]
fn entry_wire_format_round_trips() {
    let wire = json!({
        "version": 1, "kind": 1, "sequenceID": 7, "operationID": 3,
        "removeOld": 2, "removeNew": null, "deleteNew": 1,
        "state": res("a"), "isRefresh": true, "requiresByteString": true
    });
    let entry: JournalEntry = serde_json::from_value(wire).unwrap();
    assert_eq!(entry.kind, 1);
    assert_eq!(entry.sequence_id, 7);
    assert_eq!(entry.operation_id, 3);
    assert_eq!(entry.remove_old, Some(2));
    assert_eq!(entry.remove_new, None);
    assert_eq!(entry.delete_new, Some(1));
    assert!(entry.is_refresh && entry.requires_byte_string);
    let back = serde_json::to_value(&entry).unwrap();
    // removeOld/removeNew are always written (null when unset); the rest only when set.
    assert_eq!(back["removeNew"], Value::Null);
    assert!(back.get("pendingReplacementOld").is_none());
    assert!(back.get("operation").is_none());
    assert_eq!(back["deleteNew"], 1);

    // Only kind and sequenceID are required; everything else tolerates absence.
    let minimal: JournalEntry =
        serde_json::from_value(json!({"kind": 0, "sequenceID": 1})).unwrap();
    assert_eq!(minimal.version, 1);
    assert_eq!(minimal.operation_id, 0);
    assert_eq!(minimal.state, None);
    assert_eq!(EntryKind::from_i64(9), Some(EntryKind::Snippets));
    assert_eq!(EntryKind::from_i64(10), None);
    for k in 0..=9 {
        assert_eq!(EntryKind::from_i64(k).unwrap().as_i64(), k);
    }
}

#[test]
fn empty_and_null_bases_generate_an_empty_v3_deployment() {
    for base in [Value::Null, json!({"manifest": manifest()})] {
        let (version, features, d) = replay(base, &[]);
        assert_eq!(version, 3);
        assert!(features.is_empty());
        assert_eq!(d, json!({"manifest": manifest(), "metadata": {}}));
    }
    assert!(matches!(Replayer::new(json!([1])), Err(JournalError::InvalidDeployment(_))));
    assert!(Replayer::new(json!({"resources": {}})).is_err());
    assert!(Replayer::new(json!({"resources": [1]})).is_err());
}

// ---- ports of pkg/backend/journaler_snapshot_test.go ---------------------------------

#[test]
fn recording_create_success() {
    let mut j = Journal::default();
    j.begin(1, Some(operation(&res("a"), "creating")));
    let mut r = Replayer::new(deployment(vec![])).unwrap();
    r.apply(&j.entries).unwrap();
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert!(resources(&d).is_empty());
    assert_eq!(pending(&d), vec![(urn("a"), "creating".to_string())]);

    j.success(1, |e| e.state = Some(res("a")));
    r.apply(&j.entries).unwrap();
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(urns(&d), vec![urn("a")]);
    assert!(pending(&d).is_empty());
}

#[test]
fn recording_create_failure() {
    let mut j = Journal::default();
    j.begin(1, Some(operation(&res("a"), "creating")));
    // The engine attaches the state to failures too; replay must ignore it.
    j.push(EntryKind::Failure, 1, |e| e.state = Some(res("a")));
    let (_, _, d) = replay(deployment(vec![]), &j.entries);
    assert!(resources(&d).is_empty());
    assert!(pending(&d).is_empty());
}

#[test]
fn recording_update_success_and_failure() {
    let old = with(res("a"), "inputs", json!({"key": "old"}));
    let new = with(res("a"), "inputs", json!({"key": "new"}));
    let mut j = Journal::default();
    j.begin(1, Some(operation(&new, "updating")));
    let mut r = Replayer::new(deployment(vec![old.clone()])).unwrap();
    r.apply(&j.entries).unwrap();
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(resources(&d), vec![old.clone()]);
    assert_eq!(d["pending_operations"][0]["resource"]["inputs"]["key"], "new");
    assert_eq!(d["pending_operations"][0]["type"], "updating");

    let mut ok = Journal { entries: j.entries.clone() };
    ok.success(1, |e| {
        e.state = Some(new.clone());
        e.remove_old = Some(0);
    });
    let (_, _, d) = replay(deployment(vec![old.clone()]), &ok.entries);
    assert_eq!(resources(&d), vec![new.clone()]);
    assert!(pending(&d).is_empty());

    let mut failed = Journal { entries: j.entries.clone() };
    failed.failure(1);
    let (_, _, d) = replay(deployment(vec![old.clone()]), &failed.entries);
    assert_eq!(resources(&d), vec![old]);
    assert!(pending(&d).is_empty());
}

#[test]
fn recording_delete_success_and_failure() {
    let a = res("a");
    let mut j = Journal::default();
    j.begin(1, Some(operation(&a, "deleting")));
    let (_, _, d) = replay(deployment(vec![a.clone()]), &j.entries);
    assert_eq!(urns(&d), vec![urn("a")]);
    assert_eq!(pending(&d), vec![(urn("a"), "deleting".to_string())]);

    let mut ok = Journal { entries: j.entries.clone() };
    ok.success(1, |e| e.remove_old = Some(0));
    let (_, _, d) = replay(deployment(vec![a.clone()]), &ok.entries);
    assert!(d.get("resources").is_none(), "empty resources are omitted, as in Go");
    assert!(pending(&d).is_empty());

    let mut failed = Journal { entries: j.entries };
    failed.failure(1);
    let (_, _, d) = replay(deployment(vec![a]), &failed.entries);
    assert_eq!(urns(&d), vec![urn("a")]);
    assert!(pending(&d).is_empty());
}

#[test]
fn recording_read_success_and_failure() {
    // No previous resource.
    let b = with(with(res("b"), "external", json!(true)), "id", json!("some-b"));
    let mut j = Journal::default();
    j.begin(1, Some(operation(&b, "reading")));
    j.success(1, |e| e.state = Some(b.clone()));
    let (_, _, d) = replay(deployment(vec![]), &j.entries);
    assert_eq!(resources(&d), vec![b.clone()]);
    assert!(pending(&d).is_empty());

    // Previous resource: success replaces it, failure keeps it.
    let old = with(res("c"), "inputs", json!({"key": "old"}));
    let new = with(res("c"), "inputs", json!({"key": "new"}));
    let mut ok = Journal::default();
    ok.begin(1, Some(operation(&new, "reading"))).success(1, |e| {
        e.state = Some(new.clone());
        e.remove_old = Some(0);
    });
    let (_, _, d) = replay(deployment(vec![old.clone()]), &ok.entries);
    assert_eq!(resources(&d), vec![new.clone()]);

    let mut failed = Journal::default();
    failed.begin(1, Some(operation(&new, "reading"))).failure(1);
    let (_, _, d) = replay(deployment(vec![old.clone()]), &failed.entries);
    assert_eq!(resources(&d), vec![old]);
    assert!(pending(&d).is_empty());
}

#[test]
fn same_steps_identical_failed_and_with_empty_dependencies() {
    let a = res("a");
    let mut j = Journal::default();
    j.same_old(1, 0, a.clone());
    let (_, _, d) = replay(deployment(vec![a.clone()]), &j.entries);
    assert_eq!(resources(&d), vec![a.clone()]);

    // A failed same leaves the base resource in place.
    let mut failed = Journal::default();
    failed.begin(1, None).failure(1);
    let (_, _, d) = replay(deployment(vec![a.clone()]), &failed.entries);
    assert_eq!(resources(&d), vec![a]);
    assert!(pending(&d).is_empty(), "a begin without operation is never pending");
}

#[test]
fn sames_with_dependency_changes() {
    // Base: a, b(->a). The program now registers b first without deps, then a(->b).
    let a = res("a");
    let b = res_deps("b", &["a"]);
    let base = deployment(vec![a.clone(), b.clone()]);
    let mut j = Journal::default();
    j.same_old(1, 1, res("b"));
    let (_, _, d) = replay(base.clone(), &j.entries);
    assert_eq!(urns(&d), vec![urn("b"), urn("a")]);
    assert!(d["resources"][0].get("dependencies").is_none());
    assert!(d["resources"][1].get("dependencies").is_none());

    j.same_old(2, 0, res_deps("a", &["b"]));
    let (_, _, d) = replay(base, &j.entries);
    assert_eq!(urns(&d), vec![urn("b"), urn("a")]);
    assert_eq!(d["resources"][1]["dependencies"], json!([urn("b")]));
}

#[test]
fn vexing_deployment() {
    // Base a, b(->a), c(->a,b), d(->c), e(->c). The engine then runs:
    // same b (no deps), create-replacement c'(->b), replace (no journal entries),
    // update d'(->c').
    let a = res("a");
    let b = res_deps("b", &["a"]);
    let c = res_deps("c", &["a", "b"]);
    let d = res_deps("d", &["c"]);
    let e = res_deps("e", &["c"]);
    let base = deployment(vec![a, b, c, d, e]);

    let mut j = Journal::default();
    j.same_old(1, 1, res("b"));
    let c_prime = res_deps("c", &["b"]);
    j.begin(2, Some(operation(&c_prime, "creating"))).success(2, |en| {
        en.state = Some(c_prime.clone());
        en.delete_old = Some(2);
    });
    j.update_old(4, 3, res_deps("d", &["c"]));

    let (_, _, out) = replay(base, &j.entries);
    let rs = resources(&out);
    assert_eq!(rs.len(), 6);
    assert_eq!(urns(&out), ["b", "c", "d", "a", "c", "e"].map(urn).to_vec());
    assert!(rs[0].get("dependencies").is_none());
    assert_eq!(rs[1]["dependencies"], json!([urn("b")]));
    assert_eq!(rs[2]["dependencies"], json!([urn("c")]));
    assert!(rs[3].get("dependencies").is_none());
    // The old c is kept after a, pending deletion, with its dependencies.
    assert_eq!(rs[4]["delete"], true);
    assert_eq!(rs[4]["dependencies"], json!([urn("a"), urn("b")]));
    assert!(rs[1].get("delete").is_none());
    assert_eq!(rs[5]["dependencies"], json!([urn("c")]));
}

#[test]
fn register_outputs() {
    // TestRegisterOutputsJournaling: same a, outputs for it, then a second same whose old
    // state is the new resource of the first (removeNew), then outputs again.
    let a = res("a");
    let a2 = with(res("a"), "outputs", json!({"hello": "world"}));
    let mut j = Journal::default();
    j.same_old(1, 0, a.clone());
    j.outputs(2, |e| {
        e.state = Some(a.clone());
        e.remove_new = Some(1);
    });
    j.begin(3, None).success(3, |e| {
        e.state = Some(a2.clone());
        e.remove_new = Some(1);
    });
    j.outputs(4, |e| {
        e.state = Some(a2.clone());
        e.remove_new = Some(3);
    });
    let (_, _, d) = replay(deployment(vec![a.clone()]), &j.entries);
    assert_eq!(resources(&d), vec![a2]);

    // Outputs for a base resource replace it in place; without a state they do nothing.
    let mut j = Journal::default();
    let b_out = with(res("b"), "outputs", json!({"x": 1}));
    j.outputs(1, |e| {
        e.state = Some(b_out.clone());
        e.remove_old = Some(1);
    });
    j.outputs(2, |e| e.remove_old = Some(0));
    let (_, _, d) = replay(deployment(vec![a.clone(), res("b"), res("c")]), &j.entries);
    assert_eq!(resources(&d), vec![a, b_out, res("c")]);
}

// ---- removal and marks -----------------------------------------------------------------

#[test]
fn remove_new_drops_a_resource_made_in_this_update() {
    // A program-based destroy: same a (new state), then delete of that new state.
    let a = res("a");
    let mut j = Journal::default();
    j.same_old(1, 0, a.clone());
    j.begin(2, Some(operation(&a, "deleting"))).success(2, |e| e.remove_new = Some(1));
    // And a resource created and deleted within the same update.
    j.create(3, res("x"));
    j.begin(4, Some(operation(&res("x"), "deleting"))).success(4, |e| e.remove_new = Some(3));
    j.create(5, res("y"));
    let (_, _, d) = replay(deployment(vec![a]), &j.entries);
    assert_eq!(urns(&d), vec![urn("y")]);
    assert!(pending(&d).is_empty());
}

#[test]
fn delete_and_pending_replacement_marks() {
    let base = deployment(vec![res("a"), res("b")]);
    let mut j = Journal::default();
    // Delete-before-replace marks the base resource pending replacement.
    j.begin(1, Some(operation(&res("a"), "deleting")))
        .success(1, |e| e.pending_replacement_old = Some(0));
    // Create-replacement marks the base resource for deletion.
    j.begin(2, Some(operation(&res("b"), "creating"))).success(2, |e| {
        e.state = Some(res("b"));
        e.delete_old = Some(1);
    });
    // New resources can be marked too, including by the entry that creates them.
    j.create(3, res("n"));
    j.begin(4, None).success(4, |e| e.delete_new = Some(3));
    j.begin(5, None).success(5, |e| e.pending_replacement_new = Some(3));
    j.begin(6, None).success(6, |e| {
        e.state = Some(res("m"));
        e.delete_new = Some(6);
    });
    let (_, _, d) = replay(base, &j.entries);
    let rs = resources(&d);
    assert_eq!(urns(&d), ["b", "n", "m", "a", "b"].map(urn).to_vec());
    assert!(rs[0].get("delete").is_none());
    assert_eq!(rs[1]["delete"], true);
    assert_eq!(rs[1]["pendingReplacement"], true);
    assert_eq!(rs[2]["delete"], true);
    assert_eq!(rs[3]["pendingReplacement"], true);
    assert!(rs[3].get("delete").is_none());
    assert_eq!(rs[4]["delete"], true);
}

#[test]
fn remove_pending_replace() {
    let a = with(res("a"), "pendingReplacement", json!(true));
    let mut j = Journal::default();
    j.begin(1, None).success(1, |e| e.remove_old = Some(0));
    let (_, _, d) = replay(deployment(vec![a, res("b")]), &j.entries);
    assert_eq!(urns(&d), vec![urn("b")]);
}

#[test]
fn replacement_state_wins_over_marks() {
    // Refresh replaces base[0]; a later delete-mark on the same index is then ignored, as
    // in Go (the mark is set on the copy that the replacement supersedes).
    let refreshed = with(res("a"), "outputs", json!({"r": 1}));
    let mut j = Journal::default();
    j.refresh(1, |e| {
        e.state = Some(refreshed.clone());
        e.remove_old = Some(0);
    });
    j.begin(2, None).success(2, |e| {
        e.delete_old = Some(0);
        e.pending_replacement_old = Some(0);
    });
    let (_, _, d) = replay(deployment(vec![res("a")]), &j.entries);
    assert_eq!(resources(&d), vec![refreshed]);
}

// ---- refresh -----------------------------------------------------------------------------

#[test]
fn refresh_in_place_and_deleted() {
    let base = deployment(vec![res("a"), res("b"), res("c")]);
    let b2 = with(res("b"), "outputs", json!({"fresh": true}));
    let mut j = Journal::default();
    j.begin(1, None).refresh(1, |e| {
        e.state = Some(b2.clone());
        e.remove_old = Some(1);
        e.is_refresh = true;
    });
    j.begin(2, None).refresh(2, |e| {
        e.remove_old = Some(2);
        e.is_refresh = true;
    });
    let (_, _, d) = replay(base, &j.entries);
    assert_eq!(resources(&d), vec![res("a"), b2]);
    assert!(pending(&d).is_empty());
}

#[test]
fn refresh_prunes_replace_with() {
    // Port of TestJournalReplayerRefreshPrunesReplaceWith.
    let dependent = with(res("dependent"), "replaceWith", json!([urn("a"), urn("b")]));
    let base = deployment(vec![res("a"), res("b"), res("unrelated"), dependent]);
    let mut j = Journal::default();
    j.refresh(1, |e| e.remove_old = Some(1));
    let (_, features, d) = replay(base, &j.entries);
    assert_eq!(urns(&d), ["a", "unrelated", "dependent"].map(urn).to_vec());
    assert_eq!(d["resources"][2]["replaceWith"], json!([urn("a")]));
    assert!(d["resources"][1].get("replaceWith").is_none());
    assert_eq!(features, vec!["replaceWith"]);
}

#[test]
fn refresh_prunes_dangling_references_and_parents() {
    // gone is deleted by the refresh; child refers to it in every way possible.
    let child = json!({
        "urn": urn("child"), "custom": true, "type": "pkg:m:typ",
        "parent": urn("gone"),
        "dependencies": [urn("keep"), urn("gone")],
        "propertyDependencies": {"p": [urn("gone")], "q": [urn("keep"), urn("gone")], "r": []},
        "deletedWith": urn("gone"),
        "replaceWith": [urn("gone")],
    });
    // later refers to a resource that comes after it: also pruned (not "preceding").
    let later = with(res_deps("later", &["last"]), "parent", json!(urn("keep")));
    let gone = with(res("gone"), "parent", json!(urn("keep")));
    let base = deployment(vec![res("keep"), gone, child, later, res("last")]);
    let mut j = Journal::default();
    j.refresh(1, |e| e.remove_old = Some(1));
    let (_, features, d) = replay(base, &j.entries);
    let rs = resources(&d);
    assert_eq!(urns(&d), ["keep", "child", "later", "last"].map(urn).to_vec());
    let c = &rs[1];
    // journal.go clears a dangling parent rather than using the grandparent ("keep").
    assert!(c.get("parent").is_none());
    assert_eq!(c["dependencies"], json!([urn("keep")]));
    assert_eq!(c["propertyDependencies"], json!({"q": [urn("keep")]}));
    assert!(c.get("deletedWith").is_none());
    assert!(c.get("replaceWith").is_none());
    assert!(rs[2].get("dependencies").is_none());
    assert_eq!(rs[2]["parent"], urn("keep"));
    // Features are computed before pruning, as in Go.
    assert_eq!(features, vec!["replaceWith"]);
}

#[test]
fn no_pruning_without_refresh() {
    let orphan = with(res_deps("orphan", &["missing"]), "parent", json!(urn("missing")));
    let (_, _, d) = replay(deployment(vec![orphan.clone()]), &[]);
    assert_eq!(resources(&d), vec![orphan]);
}

#[test]
fn persisted_refresh_is_a_success_with_is_refresh() {
    // A persisted refresh that finds the resource gone: kind success, no state.
    let base = deployment(vec![res("a"), res_deps("b", &["a"])]);
    let mut j = Journal::default();
    j.begin(1, None).success(1, |e| {
        e.remove_old = Some(0);
        e.is_refresh = true;
    });
    let (_, _, d) = replay(base.clone(), &j.entries);
    assert_eq!(urns(&d), vec![urn("b")]);
    assert!(d["resources"][0].get("dependencies").is_none());

    // Without isRefresh nothing is pruned.
    let mut j = Journal::default();
    j.begin(1, None).success(1, |e| e.remove_old = Some(0));
    let (_, _, d) = replay(base, &j.entries);
    assert_eq!(d["resources"][0]["dependencies"], json!([urn("a")]));
}

#[test]
fn refresh_of_new_resources() {
    let mut j = Journal::default();
    j.create(1, res("a")).create(2, res("b"));
    let a2 = with(res("a"), "outputs", json!({"v": 2}));
    j.refresh(3, |e| {
        e.state = Some(a2.clone());
        e.remove_new = Some(1);
    });
    j.refresh(4, |e| e.remove_new = Some(2));
    let (_, _, d) = replay(deployment(vec![]), &j.entries);
    assert_eq!(resources(&d), vec![a2]);
}

// ---- pending operations ------------------------------------------------------------------

#[test]
fn pending_operations_keep_base_creates_only() {
    let mut base = deployment(vec![res("a")]);
    base["pending_operations"] = json!([
        operation(&res("c"), "creating"),
        operation(&res("u"), "updating"),
        operation(&res("d"), "deleting"),
        operation(&res("r"), "reading"),
    ]);
    let mut j = Journal::default();
    // Begins arrive for op 5 before op 2; output is in operation order.
    j.begin(5, Some(operation(&res("five"), "updating")));
    j.begin(2, Some(operation(&res("two"), "creating")));
    j.begin(3, Some(operation(&res("three"), "deleting"))).failure(3);
    j.begin(4, None);
    let (_, _, d) = replay(base, &j.entries);
    assert_eq!(
        pending(&d),
        vec![
            (urn("two"), "creating".to_string()),
            (urn("five"), "updating".to_string()),
            (urn("c"), "creating".to_string()),
        ]
    );
}

// ---- write, secrets, snippets, extensions -----------------------------------------------

#[test]
fn write_replaces_the_base() {
    let mut j = Journal::default();
    let new_base = json!({
        "manifest": manifest(),
        "secrets_providers": {"type": "passphrase", "state": {"salt": "s"}},
        "metadata": {},
        "resources": [res("a"), res("b"), res("c")]
    });
    j.push(EntryKind::Write, 0, |e| e.new_snapshot = Some(new_base));
    // Index 2 only exists in the written base.
    j.delete_old(1, 2, &res("c"));
    let (_, _, d) = replay(deployment(vec![res("old")]), &j.entries);
    assert_eq!(urns(&d), vec![urn("a"), urn("b")]);
    assert_eq!(d["secrets_providers"]["type"], "passphrase");

    let mut bad = Journal::default();
    bad.push(EntryKind::Write, 0, |_| {});
    let mut r = Replayer::new(deployment(vec![])).unwrap();
    let err = r.apply(&bad.entries).unwrap_err();
    assert_eq!(err, JournalError::MissingField { sequence: 1, field: "newSnapshot" });

    let mut bad = Journal::default();
    bad.push(EntryKind::Write, 0, |e| e.new_snapshot = Some(json!("x")));
    let mut r = Replayer::new(deployment(vec![])).unwrap();
    assert!(matches!(r.apply(&bad.entries), Err(JournalError::InvalidDeployment(_))));
}

#[test]
fn secrets_manager_equal_different_and_absent() {
    let state = json!({"url": "https://api.example", "owner": "o", "project": "p", "stack": "s"});
    let mut base = deployment(vec![]);
    // An extra field shows whether the base's object was kept or replaced.
    base["secrets_providers"] = json!({"type": "service", "state": state, "marker": 1});

    // Equal type and state (key order differs): the base's provider is kept.
    let same = json!({"type": "service", "state": {"stack": "s", "project": "p", "owner": "o", "url": "https://api.example"}});
    let mut j = Journal::default();
    j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(same));
    let (_, _, d) = replay(base.clone(), &j.entries);
    assert_eq!(d["secrets_providers"]["marker"], 1);

    // Different state: replaced.
    let other = json!({"type": "service", "state": {"stack": "t"}});
    let mut j = Journal::default();
    j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(other.clone()));
    let (_, _, d) = replay(base.clone(), &j.entries);
    assert_eq!(d["secrets_providers"], other);

    // Base without a provider: set.
    let (_, _, d) = replay(deployment(vec![]), &j.entries);
    assert_eq!(d["secrets_providers"], other);

    // Entry without a provider: the base's is kept.
    let mut j = Journal::default();
    j.push(EntryKind::SecretsManager, 0, |_| {});
    let (_, _, d) = replay(base.clone(), &j.entries);
    assert_eq!(d["secrets_providers"], base["secrets_providers"]);
}

#[test]
fn snippets_set_and_clear() {
    let snippet = json!({
        "uuid": "u1", "name": "n", "type": "pkg:m:typ", "code": "{}",
        "descriptor": {"name": "pkg"}, "references": {"x": urn("old")}
    });
    let mut j = Journal::default();
    j.push(EntryKind::Snippets, 0, |e| e.snippets = Some(vec![snippet.clone()]));
    j.create(1, with(res("new"), "aliases", json!([urn("old")])));
    let (version, features, d) = replay(deployment(vec![]), &j.entries);
    assert_eq!(version, 4);
    assert_eq!(features, vec!["snippets-prototype"]);
    // Snippet references are normalised through aliases too.
    assert_eq!(d["snippets"][0]["references"]["x"], urn("new"));

    // An empty list on the wire is omitted and clears the snippets.
    j.push(EntryKind::Snippets, 0, |_| {});
    let (version, features, d) = replay(deployment(vec![]), &j.entries);
    assert_eq!(version, 3);
    assert!(features.is_empty());
    assert!(d.get("snippets").is_none());
}

#[test]
fn extension_parameterize_round_trip() {
    // Port of TestJournalExtensionParameterizeRoundTrip.
    let ext = json!({"name": "myext", "version": "1.0.0", "value": "SGVsbG8="});
    let mut j = Journal::default();
    j.push(EntryKind::ExtensionParameterize, 1, |e| {
        e.extension_ref = Some("ref-1".into());
        e.extension = Some(ext.clone());
    });
    let (_, _, d) = replay(json!({}), &j.entries);
    assert_eq!(d["extensions"]["ref-1"], ext);
}

#[test]
fn extensions_are_seeded_from_base_and_base_wins() {
    // Port of TestJournalReplayerSeedsExtensionsFromBase, plus the conflict rule.
    let base_ext = json!({"name": "base-ext", "version": "1.0.0", "value": "YmFzZWxpbmU="});
    let base = json!({"extensions": {"base-ref": base_ext, "shared": {"name": "old"}}});
    let (_, _, d) = replay(base.clone(), &[]);
    assert_eq!(d["extensions"]["base-ref"], base_ext);

    let mut j = Journal::default();
    j.push(EntryKind::ExtensionParameterize, 1, |e| {
        e.extension_ref = Some("shared".into());
        e.extension = Some(json!({"name": "new"}));
    });
    let (_, _, d) = replay(base, &j.entries);
    assert_eq!(d["extensions"]["shared"]["name"], "old");

    let mut bad = Journal::default();
    bad.push(EntryKind::ExtensionParameterize, 1, |e| e.extension = Some(json!({})));
    let mut r = Replayer::new(json!({})).unwrap();
    let err = r.apply(&bad.entries).unwrap_err();
    assert_eq!(err, JournalError::MissingField { sequence: 1, field: "extensionRef" });
}

// ---- rebuilt base state ------------------------------------------------------------------

#[test]
fn rebuilt_base_state_folds_the_journal_into_a_new_base() {
    // Refresh: b disappears, a is refreshed in place, then the engine rebuilds its base and
    // the update's indexes refer to the rebuilt base [a'].
    let base = deployment(vec![res("a"), res_deps("b", &["a"]), res_deps("c", &["b"])]);
    let a2 = with(res("a"), "outputs", json!({"refreshed": true}));
    let mut j = Journal::default();
    j.begin(1, None).refresh(1, |e| {
        e.state = Some(a2.clone());
        e.remove_old = Some(0);
    });
    j.begin(2, None).refresh(2, |e| e.remove_old = Some(1));
    j.begin(3, Some(operation(&res("p"), "updating")));
    j.push(EntryKind::RebuiltBaseState, 0, |_| {});
    let mut r = Replayer::new(base).unwrap();
    r.apply(&j.entries).unwrap();
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(urns(&d), vec![urn("a"), urn("c")]);
    // The refresh happened before the rebuild, so c's dangling dependency is pruned.
    assert!(d["resources"][1].get("dependencies").is_none());
    // The in-flight update became a base pending operation and, not being a create, is
    // dropped by the next generation.
    assert!(pending(&d).is_empty());

    // Index 1 now means c in the rebuilt base.
    j.update_old(4, 1, res("c2"));
    r.apply(&j.entries).unwrap();
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(urns(&d), vec![urn("c2"), urn("a")]);
    assert_eq!(d["resources"][1], a2);

    // Resources created before the rebuild come first in the rebuilt base.
    let mut k = Journal::default();
    k.create(1, res("n"));
    k.push(EntryKind::RebuiltBaseState, 0, |_| {});
    k.delete_old(2, 0, &res("n"));
    let (_, _, d) = replay(deployment(vec![res("x")]), &k.entries);
    assert_eq!(urns(&d), vec![urn("x")]);
}

#[test]
fn rebuilt_base_state_keeps_extensions_and_creates() {
    let mut j = Journal::default();
    j.push(EntryKind::ExtensionParameterize, 1, |e| {
        e.extension_ref = Some("r".into());
        e.extension = Some(json!({"name": "e"}));
    });
    j.begin(2, Some(operation(&res("c"), "creating")));
    j.push(EntryKind::RebuiltBaseState, 0, |_| {});
    let (_, _, d) = replay(deployment(vec![]), &j.entries);
    assert_eq!(d["extensions"]["r"]["name"], "e");
    assert_eq!(pending(&d), vec![(urn("c"), "creating".to_string())]);
}

// ---- features ----------------------------------------------------------------------------

#[test]
fn features_and_version() {
    let (version, features, _) = replay(deployment(vec![res("plain")]), &[]);
    assert_eq!((version, features), (3, vec![]));

    let rs = vec![
        with(res("a"), "refreshBeforeUpdate", json!(true)),
        with(res("b"), "viewOf", json!(urn("a"))),
        with(res("c"), "resourceHooks", json!({"beforeCreate": ["h"]})),
        with(res("d"), "taint", json!(true)),
        with(res("e"), "replaceWith", json!([urn("a")])),
        with(res("f"), "extensionRef", json!("ref")),
        with(res("g"), "snippetID", json!("u1")),
        // Present but empty/false values need no feature.
        with(with(res("h"), "taint", json!(false)), "viewOf", json!("")),
    ];
    let (version, features, _) = replay(deployment(rs), &[]);
    assert_eq!(version, 4);
    assert_eq!(
        features,
        vec![
            "extensionParameterization",
            "hooks",
            "refreshBeforeUpdate",
            "replaceWith",
            "snippets-prototype",
            "taint",
            "views"
        ]
    );

    // Resources of pending operations count too.
    let mut j = Journal::default();
    j.begin(1, Some(operation(&with(res("t"), "taint", json!(true)), "creating")));
    let (version, features, _) = replay(deployment(vec![]), &j.entries);
    assert_eq!((version, features), (4, vec!["taint".to_string()]));
}

#[test]
fn byte_string_feature_comes_from_the_entries() {
    // Port of TestJournalByteStringRoundTrip: the secret hides the bytes, the flag tells.
    let secret = json!({"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "abc"});
    let mut j = Journal::default();
    j.success(1, |e| {
        e.state = Some(with(res("r1"), "outputs", json!({"out": secret})));
        e.requires_byte_string = true;
    });
    let (version, features, _) = replay(deployment(vec![]), &j.entries);
    assert_eq!((version, features), (4, vec!["byteString".to_string()]));

    // As in Go, the flag is only recorded through a resource or operation.
    let mut j = Journal::default();
    j.push(EntryKind::SecretsManager, 0, |e| {
        e.secrets_provider = Some(json!({"type": "b64"}));
        e.requires_byte_string = true;
    });
    let (version, _, _) = replay(deployment(vec![]), &j.entries);
    assert_eq!(version, 3);
    let (version, _, _) = replay(deployment(vec![res("a")]), &j.entries);
    assert_eq!(version, 4);
}

// ---- URN normalisation -----------------------------------------------------------------

#[test]
fn normalize_urn_references_rewrites_aliases() {
    let prov_old = "urn:pulumi:dev::proj::pulumi:providers:aws::old";
    let prov_new = "urn:pulumi:dev::proj::pulumi:providers:aws::new";
    let provider = json!({"urn": prov_new, "custom": true, "type": "pulumi:providers:aws",
        "id": "pid", "aliases": [prov_old]});
    let target = with(res("new"), "aliases", json!([urn("old"), urn("older")]));
    let user = json!({
        "urn": urn("user"), "custom": true, "type": "pkg:m:typ",
        "provider": format!("{prov_old}::pid"),
        "dependencies": [urn("old"), urn("other")],
        "propertyDependencies": {"p": [urn("older")]},
        "deletedWith": urn("old"),
        "viewOf": urn("old"),
        "replaceWith": [urn("old")],
        "aliases": []
    });
    let (_, _, d) = replay(deployment(vec![provider, target, user]), &[]);
    let rs = resources(&d);
    assert!(rs.iter().all(|r| r.get("aliases").is_none()));
    let u = &rs[2];
    assert_eq!(u["provider"], format!("{prov_new}::pid"));
    assert_eq!(u["dependencies"], json!([urn("new"), urn("other")]));
    assert_eq!(u["propertyDependencies"]["p"], json!([urn("new")]));
    assert_eq!(u["deletedWith"], urn("new"));
    assert_eq!(u["viewOf"], urn("new"));
    // replaceWith is not normalised by Go's NormalizeURNReferences.
    assert_eq!(u["replaceWith"], json!([urn("old")]));
}

#[test]
fn normalize_rederives_child_urns_of_renamed_parents() {
    let parent_old = "urn:pulumi:dev::proj::my:comp:Old::p";
    let parent_new = "urn:pulumi:dev::proj::my:comp:New::p";
    let child_old = "urn:pulumi:dev::proj::my:comp:Old$pkg:m:typ::c";
    let child_new = "urn:pulumi:dev::proj::my:comp:New$pkg:m:typ::c";
    let parent = json!({"urn": parent_new, "custom": false, "type": "my:comp:New",
        "aliases": [parent_old]});
    let child = json!({"urn": child_old, "custom": true, "type": "pkg:m:typ",
        "parent": parent_old});
    let user = json!({"urn": urn("u"), "custom": true, "type": "pkg:m:typ",
        "dependencies": [child_old]});
    let (_, _, d) = replay(deployment(vec![parent, child, user]), &[]);
    assert_eq!(d["resources"][1]["urn"], child_new);
    assert_eq!(d["resources"][1]["parent"], parent_new);
    assert_eq!(d["resources"][2]["dependencies"], json!([child_new]));

    // Children of a stack that changed URN keep their unqualified URN.
    let stack_old = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-old";
    let stack_new = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev";
    let stack = json!({"urn": stack_new, "custom": false, "type": "pulumi:pulumi:Stack",
        "aliases": [stack_old]});
    let child = with(res("c"), "parent", json!(stack_old));
    let (_, _, d) = replay(deployment(vec![stack, child]), &[]);
    assert_eq!(d["resources"][1]["urn"], urn("c"));
    assert_eq!(d["resources"][1]["parent"], stack_new);
}

#[test]
fn normalize_provider_edge_cases() {
    let prov = "urn:pulumi:dev::proj::pulumi:providers:aws::p";
    let rs = vec![
        with(res("a"), "provider", json!(format!("{prov}::"))),
        with(res("b"), "provider", json!("not a reference")),
        with(res("c"), "provider", json!(format!("{}::id", urn("x")))),
    ];
    let (_, _, d) = replay(deployment(rs), &[]);
    // An empty provider ID comes back as the unknown-ID placeholder, as in Go.
    assert_eq!(d["resources"][0]["provider"], format!("{prov}::{UNKNOWN_PROVIDER_ID}"));
    // Malformed references (Go would panic) are left alone.
    assert_eq!(d["resources"][1]["provider"], "not a reference");
    assert_eq!(d["resources"][2]["provider"], format!("{}::id", urn("x")));
}

#[test]
fn duplicate_alias_is_an_error() {
    let rs = vec![
        with(res("a"), "aliases", json!([urn("old")])),
        with(res("b"), "aliases", json!([urn("old")])),
    ];
    let r = Replayer::new(deployment(rs)).unwrap();
    let err = r.snapshot(manifest()).unwrap_err();
    assert!(matches!(err, JournalError::DuplicateAlias { .. }));

    // The same alias twice on the same resource is fine.
    let rs = vec![with(res("a"), "aliases", json!([urn("old"), urn("old")]))];
    assert!(Replayer::new(deployment(rs)).unwrap().snapshot(manifest()).is_ok());
}

// ---- pass-through ------------------------------------------------------------------------

#[test]
fn unknown_fields_and_base_sections_pass_through() {
    let mut base = deployment(vec![with(res("a"), "futureField", json!({"deep": [1, 2]}))]);
    base["metadata"] = json!({"integrity_error": {"error": "boom"}});
    base["secrets_providers"] = json!({"type": "b64"});
    base["futureTopLevel"] = json!(true);
    let mut j = Journal::default();
    j.create(1, with(res("n"), "anotherNewField", json!("x")));
    let (_, _, d) = replay(base, &j.entries);
    assert_eq!(d["resources"][0]["anotherNewField"], "x");
    assert_eq!(d["resources"][1]["futureField"], json!({"deep": [1, 2]}));
    assert_eq!(d["metadata"]["integrity_error"]["error"], "boom");
    assert_eq!(d["secrets_providers"], json!({"type": "b64"}));
    assert_eq!(d["futureTopLevel"], true);
    assert_eq!(d["manifest"], manifest());
}

// ---- sequencing and validation -----------------------------------------------------------

#[test]
fn duplicate_batches_are_ignored() {
    let mut j = Journal::default();
    j.create(1, res("a")).create(2, res("b"));
    let mut r = Replayer::new(deployment(vec![])).unwrap();
    r.apply(&j.entries[..2]).unwrap();
    // The first batch is retried, then overlaps the next one.
    r.apply(&j.entries[..2]).unwrap();
    r.apply(&j.entries[1..]).unwrap();
    r.apply(&j.entries).unwrap();
    assert_eq!(r.last_sequence(), 4);
    assert_eq!(r.buffered(), 0);
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(urns(&d), vec![urn("a"), urn("b")]);
}

#[test]
fn out_of_order_entries_are_buffered_until_the_gap_fills() {
    let mut j = Journal::default();
    j.create(1, res("a")).create(2, res("b"));
    let e = &j.entries;
    let mut r = Replayer::new(deployment(vec![])).unwrap();
    // Within one batch, out of order.
    r.apply(&[e[1].clone(), e[0].clone()]).unwrap();
    assert_eq!(r.last_sequence(), 2);
    // Sequence 4 arrives in a batch before 3.
    r.apply(&[e[3].clone()]).unwrap();
    assert_eq!((r.last_sequence(), r.buffered()), (2, 1));
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(urns(&d), vec![urn("a")], "buffered entries are not visible yet");
    r.apply(&[e[3].clone()]).unwrap();
    assert_eq!(r.buffered(), 1, "a buffered duplicate is ignored");
    r.apply(&[e[2].clone()]).unwrap();
    assert_eq!((r.last_sequence(), r.buffered()), (4, 0));
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(urns(&d), vec![urn("a"), urn("b")]);
}

#[test]
fn invalid_entries_are_rejected_without_changing_state() {
    let base = deployment(vec![res("a")]);
    let mut r = Replayer::new(base).unwrap();
    let mut j = Journal::default();
    j.create(1, res("n"));
    r.apply(&j.entries).unwrap();
    let before = r.snapshot(manifest()).unwrap();

    let bad = |f: &dyn Fn(&mut JournalEntry)| {
        let mut e = JournalEntry {
            kind: EntryKind::Success.as_i64(),
            sequence_id: 3,
            operation_id: 2,
            ..JournalEntry::default()
        };
        f(&mut e);
        e
    };
    let cases: Vec<(JournalEntry, JournalError)> = vec![
        (
            bad(&|e| {
                e.state = Some(res("x"));
                e.remove_old = Some(1);
            }),
            JournalError::BaseIndexOutOfRange { sequence: 3, index: 1, len: 1 },
        ),
        (
            bad(&|e| e.delete_old = Some(-1)),
            JournalError::BaseIndexOutOfRange { sequence: 3, index: -1, len: 1 },
        ),
        (
            bad(&|e| {
                e.state = Some(res("x"));
                e.remove_new = Some(9);
            }),
            JournalError::UnknownOperation { sequence: 3, operation: 9 },
        ),
        (
            bad(&|e| e.pending_replacement_new = Some(7)),
            JournalError::UnknownOperation { sequence: 3, operation: 7 },
        ),
        (bad(&|e| e.state = Some(json!([1]))), invalid(3, "state", "an object")),
        (bad(&|e| e.kind = 10), JournalError::UnknownKind { sequence: 3, kind: 10 }),
        (bad(&|e| e.version = 2), JournalError::UnsupportedVersion { sequence: 3, version: 2 }),
    ];
    for (entry, expected) in cases {
        let mut r2 = r.clone();
        assert_eq!(r2.apply(&[entry]).unwrap_err(), expected);
        assert_eq!(r2.last_sequence(), 2);
        assert_eq!(r2.snapshot(manifest()).unwrap(), before);
        // The rejected entry is discarded, so a corrected resend of the same ID applies.
        r2.apply(&[bad(&|e| e.state = Some(res("fixed")))]).unwrap();
        assert_eq!(r2.last_sequence(), 3);
    }

    // A batch with an invalid sequence ID is rejected as a whole.
    let good = bad(&|e| e.state = Some(res("fixed")));
    let zero = JournalEntry { sequence_id: 0, ..JournalEntry::default() };
    assert_eq!(r.apply(&[good, zero]).unwrap_err(), JournalError::InvalidSequence(0));
    assert_eq!((r.last_sequence(), r.buffered()), (2, 0));
}

#[test]
fn apply_owned_matches_apply() {
    let mut j = Journal::default();
    j.create(1, res("a")).same_old(2, 0, res("b"));
    let mut a = Replayer::new(deployment(vec![res("b")])).unwrap();
    let mut b = a.clone();
    a.apply(&j.entries).unwrap();
    b.apply_owned(j.entries.clone()).unwrap();
    assert_eq!(a.snapshot(manifest()).unwrap(), b.snapshot(manifest()).unwrap());
}

// ---- equivalence with full checkpoints ---------------------------------------------------

#[test]
fn journal_replay_matches_full_checkpoints() {
    let sp = json!({"type": "service", "state": {"url": "https://api.example", "owner": "o",
        "project": "proj", "stack": "dev"}});
    let stack_urn = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev";
    let stack = json!({"urn": stack_urn, "custom": false, "type": "pulumi:pulumi:Stack"});
    let stack_out = with(stack.clone(), "outputs", json!({"bucket": "b-1"}));
    let child = |name: &str, inputs: Value| {
        json!({"urn": urn(name), "custom": true, "type": "pkg:m:typ", "id": format!("id-{name}"),
            "parent": stack_urn, "inputs": inputs, "outputs": inputs})
    };
    let a = child("a", json!({"size": 1}));
    let b = child("b", json!({"size": 2}));
    let a2 = child("a", json!({"size": 10}));

    // Update 1 on a never-updated stack: create stack, a, b; register stack outputs.
    // The CLI's last full checkpoint would be:
    let checkpoint1 = json!({
        "manifest": manifest(), "secrets_providers": sp, "metadata": {},
        "resources": [stack_out, a, b]
    });
    let empty = json!({"manifest": manifest(), "metadata": {}});
    let mut j1 = Journal::default();
    j1.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
    j1.push(EntryKind::Write, 0, |e| {
        e.new_snapshot = Some(json!({"manifest": manifest(), "secrets_providers": sp,
            "metadata": {}}));
    });
    j1.create(1, stack.clone()).create(2, a.clone()).create(3, b.clone());
    j1.outputs(4, |e| {
        e.state = Some(stack_out.clone());
        e.remove_new = Some(1);
    });
    let (v1, f1, d1) = replay(empty, &j1.entries);
    assert_eq!((v1, f1), (3, vec![]));
    assert_eq!(d1["resources"], checkpoint1["resources"]);
    assert_eq!(d1, checkpoint1);

    // Update 2 from that state: same stack, update a, delete b, outputs again.
    let checkpoint2 = json!({
        "manifest": manifest(), "secrets_providers": sp, "metadata": {},
        "resources": [stack_out, a2]
    });
    let mut j2 = Journal::default();
    j2.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
    j2.push(EntryKind::Write, 0, |e| e.new_snapshot = Some(d1.clone()));
    j2.same_old(1, 0, stack.clone());
    j2.update_old(2, 1, a2.clone());
    j2.delete_old(3, 2, &b);
    j2.outputs(4, |e| {
        e.state = Some(stack_out.clone());
        e.remove_new = Some(1);
    });
    let (_, _, d2) = replay(d1.clone(), &j2.entries);
    assert_eq!(d2["resources"], checkpoint2["resources"]);
    assert_eq!(d2, checkpoint2);

    // Replaying update 2 in small, retried, reordered batches gives the same result.
    let mut r = Replayer::new(d1).unwrap();
    for chunk in j2.entries.chunks(3).rev() {
        r.apply(chunk).unwrap();
        r.apply(chunk).unwrap();
    }
    assert_eq!(r.snapshot(manifest()).unwrap().deployment, checkpoint2);
}

// ---- scale -------------------------------------------------------------------------------

#[test]
fn ten_thousand_resources_replay_in_linear_time() {
    const N: i64 = 10_000;
    let started = Instant::now();
    let mut j = Journal::default();
    for i in 1..=N {
        j.create(i, res(&format!("r{i}")));
    }
    let mut r = Replayer::new(deployment(vec![])).unwrap();
    for batch in j.entries.chunks(100) {
        r.apply(batch).unwrap();
    }
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(resources(&d).len(), N as usize);

    // Second update: update every other resource and delete the rest.
    let mut j = Journal::default();
    for i in 0..N {
        if i % 2 == 0 {
            j.update_old(i + 1, i, with(res(&format!("r{}", i + 1)), "inputs", json!({"v": 2})));
        } else {
            j.delete_old(i + 1, i, &res(&format!("r{}", i + 1)));
        }
    }
    let mut r = Replayer::new(d).unwrap();
    r.apply_owned(j.entries).unwrap();
    let d = r.snapshot(manifest()).unwrap().deployment;
    assert_eq!(resources(&d).len(), N as usize / 2);
    // Generous bound: a quadratic replay of 40,000 entries would take far longer.
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

// ---- resumable state (incremental materialisation) ---------------------------------------

/// Replays `entries` in one go, and resumed from a stored state after each cut point:
/// serialize, parse back, check, then apply the rest. Every resumed result must be
/// byte-for-byte the uninterrupted one.
fn assert_resumes_identically(base: &Value, entries: &[JournalEntry], cuts: &[usize]) {
    let mut full = Replayer::new(base.clone()).unwrap();
    full.apply(entries).unwrap();
    let expected = serde_json::to_vec(&full.snapshot(manifest()).unwrap()).unwrap();
    for &cut in cuts {
        let mut first = Replayer::new(base.clone()).unwrap();
        first.apply(&entries[..cut]).unwrap();
        let stored = serde_json::to_vec(&first).unwrap();
        let mut resumed: Replayer = serde_json::from_slice(&stored).unwrap();
        resumed.check_resumed().unwrap();
        assert_eq!(resumed.last_sequence(), cut as i64);
        // Batches that straddle the cut are re-read whole when resuming.
        let overlap = cut.saturating_sub(3);
        resumed.apply(&entries[overlap..]).unwrap();
        let got = serde_json::to_vec(&resumed.snapshot(manifest()).unwrap()).unwrap();
        assert!(got == expected, "resumed after {cut} of {} entries differs", entries.len());
    }
}

#[test]
fn resumed_state_matches_an_uninterrupted_replay_at_every_entry() {
    // A journal touching every kind and every piece of replay state.
    let sp = json!({"type": "service", "state": {"url": "https://api.example"}});
    let base = json!({"manifest": manifest(), "metadata": {}, "resources": [
        res("a"), res("b"), res("c"), res("d"), res("e")],
        "pending_operations": [operation(&res("z"), "creating")],
        "extensions": {"base": {"name": "x"}}});
    let mut j = Journal::default();
    j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
    j.same_old(1, 0, res("a"));
    j.update_old(2, 1, with(res("b"), "inputs", json!({"f": 1.0000000000000002e-7})));
    j.delete_old(3, 2, &res("c"));
    j.create(4, res("n1"));
    // A replacement: new resource created, old one marked, then deleted.
    j.create(5, res("d"));
    j.begin(6, None).success(6, |e| e.pending_replacement_old = Some(3));
    j.begin(7, None).success(7, |e| e.delete_old = Some(3));
    j.refresh(8, |e| {
        e.remove_old = Some(4);
        e.state = Some(with(res("e"), "outputs", json!({"r": true})));
    });
    j.outputs(4, |e| {
        e.remove_new = Some(4);
        e.state = Some(with(res("n1"), "outputs", json!({"o": [1, 2.5, "x"]})));
    });
    j.begin(9, Some(operation(&res("failed"), "creating"))).failure(9);
    j.create(10, res_deps("n2", &["n1"]));
    j.begin(11, None).success(11, |e| e.delete_new = Some(10));
    j.begin(12, None).success(12, |e| e.remove_new = Some(10));
    j.push(EntryKind::Snippets, 0, |e| e.snippets = Some(vec![json!({"s": 1})]));
    j.push(EntryKind::ExtensionParameterize, 0, |e| {
        e.extension_ref = Some("ext".into());
        e.extension = Some(json!({"name": "p", "version": "1.0.0", "value": "AA=="}));
    });
    j.push(EntryKind::Success, 13, |e| {
        e.state = Some(res("bytes"));
        e.requires_byte_string = true;
    });
    // Still running when the CLI stopped: stays pending.
    j.begin(14, Some(operation(&res("inflight"), "creating")));
    j.push(EntryKind::RebuiltBaseState, 0, |_| {});
    j.create(15, res("after-rebuild"));
    j.begin(16, Some(operation(&res("last"), "updating")));
    let n = j.entries.len();
    assert_resumes_identically(&base, &j.entries, &(0..=n).collect::<Vec<_>>());
}

#[test]
fn a_tampered_resumed_state_is_refused() {
    let mut j = Journal::default();
    j.create(1, res("a")).same_old(2, 0, res("b"));
    let mut r = Replayer::new(deployment(vec![res("b")])).unwrap();
    r.apply(&j.entries).unwrap();
    let good = serde_json::to_value(&r).unwrap();
    for (pointer, bad) in [
        ("/base_len", json!(7)),
        ("/operation_to_index", json!({"1": 5})),
        ("/to_delete_in_snapshot", json!([3])),
        ("/last_sequence", json!(-1)),
    ] {
        let mut v = good.clone();
        *v.pointer_mut(pointer).unwrap() = bad;
        let resumed: Replayer = serde_json::from_value(v).unwrap();
        assert!(resumed.check_resumed().is_err(), "{pointer}");
    }
    let resumed: Replayer = serde_json::from_value(good).unwrap();
    resumed.check_resumed().unwrap();
}

/// A fixture deployment (`checkpoint.latest`) under `tests/fixtures/pulumi/checkpoints`.
fn fixture_deployment(name: &str) -> Value {
    let text = crate::fixtures::text(&format!("checkpoints/{name}.json"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["checkpoint"]["latest"].clone()
}

/// Entries an engine would send to turn `base` into `next`: a step per resource of `next`
/// (same/update of its base entry, or a create), then deletes of what `next` dropped.
fn steps_between(base: &Value, next: &Value) -> Journal {
    let empty = vec![];
    let old = base["resources"].as_array().unwrap_or(&empty);
    let new = next["resources"].as_array().unwrap_or(&empty);
    let index: HashMap<&str, usize> =
        old.iter().enumerate().filter_map(|(i, r)| Some((r["urn"].as_str()?, i))).collect();
    let mut j = Journal::default();
    if let Some(sp) = next.get("secrets_providers") {
        j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
    }
    let mut op = 0;
    for r in new {
        op += 1;
        match r["urn"].as_str().and_then(|u| index.get(u)) {
            Some(&i) => j.update_old(op, i as i64, r.clone()),
            None => j.create(op, r.clone()),
        };
    }
    let kept: HashSet<&str> = new.iter().filter_map(|r| r["urn"].as_str()).collect();
    for (i, r) in old.iter().enumerate() {
        if !r["urn"].as_str().is_some_and(|u| kept.contains(u)) {
            op += 1;
            j.delete_old(op, i as i64, r);
        }
    }
    j
}

#[test]
fn fixture_journals_resume_identically() {
    for name in ["checkpoint-v3", "checkpoint-v4", "checkpoint-secrets"] {
        let target = fixture_deployment(name);
        let resources = target["resources"].as_array().unwrap().clone();
        assert!(resources.len() > 10, "{name}");
        // A first update from nothing, then one from the fixture that changes every
        // other resource and drops the last third.
        let empty = json!({"manifest": manifest(), "metadata": {}});
        let first = steps_between(&empty, &target).entries;
        let mut changed = target.clone();
        let keep = resources.len() * 2 / 3;
        changed["resources"] =
            Value::Array(
                resources[..keep]
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        if i % 2 == 0 {
                            with(r.clone(), "protect", json!(true))
                        } else {
                            r.clone()
                        }
                    })
                    .collect(),
            );
        let second = steps_between(&target, &changed).entries;
        for (base, entries) in [(&empty, &first), (&target, &second)] {
            let n = entries.len();
            // Odd cuts fall between a begin and its success (mid-operation).
            let cuts = [1, 2, 3, n / 3, n / 2 + 1, n - 2, n - 1, n];
            assert_resumes_identically(base, entries, &cuts);
        }
    }
}

#[test]
fn long_generated_journal_resumes_identically() {
    const N: i64 = 3_000;
    let mut j = Journal::default();
    for i in 1..=N {
        j.create(i, with(res(&format!("r{i}")), "outputs", json!({"n": i, "f": i as f64 / 7.0})));
    }
    let n = j.entries.len();
    let cuts = [999, 1000, 2001, 4000, 5999, n];
    assert_resumes_identically(&deployment(vec![]), &j.entries, &cuts);
}
