//! Refresh, pending operations, writes, secrets, snippets, extensions and rebuilt bases.

use super::*;

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
