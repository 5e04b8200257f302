//! Sequencing and validation, equivalence with full checkpoints, scale, and resumable state.

use super::*;

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
        ("/mark_as_deletion", json!([7])),
        ("/operation_to_index", json!({"1": 5})),
        ("/to_delete_in_snapshot", json!([3])),
        ("/last_sequence", json!(-1)),
    ] {
        let mut v = good.clone();
        *v.pointer_mut(pointer).unwrap() = bad;
        // Through text, as a stored state is read: resources are kept as JSON text.
        let resumed: Replayer = serde_json::from_str(&v.to_string()).unwrap();
        assert!(resumed.check_resumed().is_err(), "{pointer}");
    }
    let resumed: Replayer = serde_json::from_str(&good.to_string()).unwrap();
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
