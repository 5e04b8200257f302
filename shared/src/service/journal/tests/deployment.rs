//! The generated deployment: features, URN normalisation, fields passed through.

use super::*;

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
