//! `pulumi policy` (the real CLI) against the emulator: a Python policy pack published, enabled
//! for the organization, enforced on `pulumi up` (a mandatory violation stops it before anything
//! changes, an advisory one only warns), disabled and removed, as a user does it. The pack runs
//! in the real `pulumi-policy` SDK from PyPI, installed offline from the wheelhouse
//! `.ci/pulumi-cli` keeps (`$PULUMI_POLICY_WHEELS`), through our policy-only Python language host
//! (`tests/cli/policy-host`).

use std::path::{Path, PathBuf};

use crate::pulumi::{Item, Program, Pulumi};
use crate::server::{Target, TestServer};

const PACK: &str = "stackhouse-test-policy";

/// Copies the sample pack (`tests/cli/policy-pack`) to `dir`.
fn copy_pack(dir: &Path) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cli/policy-pack");
    std::fs::create_dir_all(dir).expect("create the pack directory");
    for entry in std::fs::read_dir(&src).expect("tests/cli/policy-pack") {
        let entry = entry.expect("a pack file");
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy a pack file");
        }
    }
}

/// The offline pip settings every policy pack install needs (a pack's virtualenv).
fn offline_pip(p: &mut Pulumi) {
    let wheels = std::env::var("PULUMI_POLICY_WHEELS").unwrap_or_else(|_| {
        panic!("PULUMI_POLICY_WHEELS is unset: run `bash .ci/pulumi-cli` and export its last line")
    });
    p.set_env("PIP_NO_INDEX", "1");
    p.set_env("PIP_FIND_LINKS", &wheels);
    p.set_env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
}

/// Items whose names say which policy they break.
fn program(with_forbidden: bool) -> Program {
    let mut padded = Item::new("padded", "fine");
    padded.pad_bytes = 16;
    let mut items = vec![Item::new("plain", "fine"), padded];
    if with_forbidden {
        items.push(Item::new("bad", "forbidden"));
    }
    Program { items, ..Program::default() }
}

/// Publish, `policy ls`, `policy enable` for the organization, then `up`: refused with the
/// policy's message while an item breaks the mandatory policy (nothing created), passed with a
/// warning when only the advisory one is broken; `policy disable` lets the forbidden item in,
/// `policy rm` removes the pack.
pub async fn policy_packs_are_enforced_on_up(target: Target) {
    let server = TestServer::start(target).await;
    let mut p = Pulumi::login(&server).await;
    offline_pip(&mut p);
    let org = p.org.clone();
    let pack = p.items_dir().with_file_name("pack");
    copy_pack(&pack);

    // The pack's own virtualenv, then publish (the CLI runs the pack to learn its policies).
    p.run(&pack, &["install"]).await.ok();
    let published = p.run(&pack, &["policy", "publish", &org]).await.ok();
    published.says(&format!("Publishing \"{PACK}\" - version 0.1.0 to \"{org}\""));
    p.run(&pack, &["policy", "ls", &org]).await.ok().says(PACK).says("0.1.0");
    // A version is published once.
    p.run(&pack, &["policy", "publish", &org]).await.failed().says("already published");
    p.run(&pack, &["policy", "enable", &format!("{org}/{PACK}"), "latest"]).await.ok();
    p.run(&pack, &["policy", "group", "ls", &org]).await.ok().says("default-policy-group");

    let proj = p.project("guarded", &program(true));
    p.run(&proj.dir, &["stack", "init", &p.fq("guarded", "dev")]).await.ok();
    let refused = p.run(&proj.dir, &["up", "--yes", "--stack", "dev"]).await.failed();
    refused
        .says("no-forbidden-value")
        .says("[mandatory]")
        .says("Item 'bad' has the forbidden value.");
    assert_eq!(p.item_count(), 0, "a refused up creates nothing:\n{refused}");

    proj.write(&program(false));
    let passed = p.run(&proj.dir, &["up", "--yes", "--stack", "dev"]).await.ok();
    passed.says("[advisory]").says("no-padding").says("Item 'padded' sets padBytes");
    passed.never_says("no-forbidden-value");
    assert_eq!(p.item_count(), 2, "{passed}");
    // The policy results the CLI reported are kept with the update, among its engine events.
    let c = server.client();
    let s = format!("/api/stacks/{org}/guarded/dev");
    let timeline = c.get(&format!("{s}/updates/latest/timeline")).await.json();
    let id = timeline["update"]["updateID"].as_str().expect("the update's id").to_string();
    let events = c.get(&format!("{s}/update/{id}/events")).await.json();
    let policy: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e.get("policyEvent"))
        .collect();
    assert!(
        policy
            .iter()
            .any(|e| e["policyName"] == "no-padding" && e["enforcementLevel"] == "advisory"),
        "no advisory policy event stored: {events}"
    );

    p.run(&pack, &["policy", "disable", &format!("{org}/{PACK}")]).await.ok();
    proj.write(&program(true));
    let free = p.run(&proj.dir, &["up", "--yes", "--stack", "dev"]).await.ok();
    free.never_says("no-forbidden-value").never_says("[advisory]");
    assert_eq!(p.item_count(), 3, "{free}");

    p.run(&pack, &["policy", "rm", &format!("{org}/{PACK}"), "all", "--yes"]).await.ok();
    p.run(&pack, &["policy", "ls", &org]).await.ok().never_says(PACK);
    p.run(&proj.dir, &["destroy", "--yes", "--stack", "dev"]).await.ok();
}
