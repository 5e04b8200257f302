//! The entry envelope, the ports of journal.go's snapshot tests, removals and marks.

use super::*;

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
