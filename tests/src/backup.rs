//! Organization export and import (`local-emulator admin export|import`,
//! `stackhouse::service::backup`) between real servers: an organization with stacks, versions,
//! service secrets, tags, a team, tokens and webhooks moves from one deployment to another
//! (embedded ↔ AWS on moto) and reads the same through the API; an export taken during an
//! update holds only published versions; damaged exports, wrong passphrases and non-empty
//! targets are refused with nothing changed; an import that crashed at any write finishes
//! when run again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use local_emulator::archive::DirArchive;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use stackhouse::app::Settings;
use stackhouse::names::{OrgName, StackId};
use stackhouse::ports::{Query, SortKey};
use stackhouse::service::backup::{self, Archive, BlobArchive, ExportOptions, Passphrase};
use stackhouse::service::webhooks::{self, Owner};

use crate::faults::{faulty, Fault, When};
use crate::secrets::{b64, unb64};
use crate::server::{Client, Target, TestServer};
use crate::session;

/// Expands to one `#[tokio::test]` per backup check, exporting from a server built from
/// `$from` and importing into one built from `$to` (each a `fn(&'static str) -> Target`).
#[macro_export]
macro_rules! backup_tests {
    ($from:expr, $to:expr) => {
        $crate::backup_tests!(@each $from, $to;
            an_organization_moves_with_every_version_secret_and_token,
            an_export_during_an_update_holds_only_published_versions,
            bad_imports_are_refused_and_change_nothing,
        );
    };
    (@each $from:expr, $to:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let from: fn(&'static str) -> $crate::server::Target = $from;
                let to: fn(&'static str) -> $crate::server::Target = $to;
                $crate::backup::$name(from(stringify!($name)), to(stringify!($name))).await;
            }
        )*
    };
}

const PASSPHRASE: &str = "a passphrase for the test exports";
const HOOK_SECRET: &str = "webhook-signing-secret";

/// Export options that stretch the passphrase little: the KDF's cost is not under test, and
/// the unoptimised test build would spend seconds on the default.
fn options() -> ExportOptions {
    ExportOptions { passphrase: Passphrase::new(PASSPHRASE), kdf_iterations: 1000 }
}

fn import_options(passphrase: &str) -> backup::ImportOptions {
    backup::ImportOptions { passphrase: Passphrase::new(passphrase) }
}

fn temp_dir(tag: &str) -> PathBuf {
    let n: u64 = rand::random();
    std::env::temp_dir().join(format!("stackhouse-export-{tag}-{n:016x}"))
}

/// Where a server's export goes: under a prefix of its own bucket on the AWS backend (the
/// `s3://` path), a directory on the embedded one.
fn archive_for(server: &TestServer, aws: bool, tag: &str) -> Arc<dyn Archive> {
    if aws {
        let prefix = format!("exports/{tag}-{:016x}", rand::random::<u64>());
        Arc::new(BlobArchive::new(server.app.ports.blobs.clone(), &prefix, &prefix))
    } else {
        Arc::new(DirArchive::new(&temp_dir(tag)))
    }
}

fn is_aws(t: &Target) -> bool {
    !matches!(t, Target::Embedded)
}

/// A deployment whose root stack resource has a service secret among its outputs.
fn state(project: &str, stack: &str, n: i64, ciphertext: &str) -> Value {
    let root = format!("urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}");
    json!({"version": 3, "deployment": {
        "manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""},
        "secrets_providers": {"type": "service", "state": {
            "url": "https://api.example.test", "owner": "o", "project": project, "stack": stack}},
        "resources": [{"urn": root, "custom": false, "type": "pulumi:pulumi:Stack",
            "outputs": {"n": n, "password": {
                "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                "ciphertext": ciphertext}}}]}})
}

/// What [`populate`] made, to check on the other side.
struct Made {
    org: String,
    /// (stack path, versions, a ciphertext of the stack, its plaintext).
    stacks: Vec<(String, i64, String, String)>,
    /// Organization and team token values.
    tokens: Vec<String>,
}

async fn encrypt(c: &Client, path: &str, plaintext: &str) -> String {
    let r =
        c.post(&format!("{path}/encrypt"), &json!({"plaintext": b64(plaintext.as_bytes())})).await;
    assert_eq!(r.status, 200, "encrypt: {r:?}");
    r.json()["ciphertext"].as_str().expect("ciphertext").to_string()
}

async fn decrypt(c: &Client, path: &str, ciphertext: &str) -> String {
    let r = c.post(&format!("{path}/decrypt"), &json!({"ciphertext": ciphertext})).await;
    assert_eq!(r.status, 200, "decrypt at {path}: {r:?}");
    String::from_utf8(unb64(r.json()["plaintext"].as_str().expect("plaintext"))).expect("utf-8")
}

/// Stacks of two projects with 0 to `max_versions` versions and a secret each, tags, a team
/// with a stack grant and a token, an organization token, and two webhooks with secrets.
async fn populate(srv: &TestServer, max_versions: i64) -> Made {
    let c = srv.client();
    let org = srv.user.clone();
    let mut stacks = Vec::new();
    for (project, stack, versions) in [
        ("proj", "alpha", max_versions),
        ("proj", "beta", 2.min(max_versions)),
        ("web", "gamma", 0),
    ] {
        let r = c.post(&format!("/api/stacks/{org}/{project}"), &json!({"stackName": stack})).await;
        assert_eq!(r.status, 200, "create {stack}: {r:?}");
        let path = format!("/api/stacks/{org}/{project}/{stack}");
        let plaintext = format!("the secret of {stack}");
        let ciphertext = encrypt(&c, &path, &plaintext).await;
        for n in 1..=versions {
            session::up(&c, &path, &[], &[state(project, stack, n, &ciphertext)]).await;
        }
        stacks.push((path, versions, ciphertext, plaintext));
    }
    let beta = &stacks[1].0;
    let r = c.patch(&format!("{beta}/tags"), &json!({"owner": "ops", "env": "prod"})).await;
    assert!(r.status.is_success(), "{r:?}");

    let orgs = format!("/api/orgs/{org}");
    let team = json!({"organization": org, "teamType": "pulumi", "name": "ops",
                      "displayName": "Operations", "description": "runs prod"});
    assert_eq!(c.post(&format!("{orgs}/teams/pulumi"), &team).await.status, 200);
    let grant = json!({"addStackPermission":
        {"projectName": "proj", "stackName": "beta", "permission": 102}});
    assert_eq!(c.patch(&format!("{orgs}/teams/ops"), &grant).await.status, 204);
    let mut tokens = Vec::new();
    for path in [format!("{orgs}/tokens"), format!("{orgs}/teams/ops/tokens")] {
        let r = c.post(&path, &json!({"name": "ci", "description": "pipeline"})).await;
        assert_eq!(r.status, 200, "token at {path}: {r:?}");
        tokens.push(r.json()["tokenValue"].as_str().expect("tokenValue").to_string());
    }
    let hook = |name: &str| {
        json!({"name": name, "displayName": "Deploys", "payloadUrl": "https://hooks.example.com/p",
               "secret": HOOK_SECRET, "format": "raw", "filters": ["update_succeeded"]})
    };
    assert_eq!(c.post(&format!("{orgs}/hooks"), &hook("org-wide")).await.status, 200);
    let mut stack_hook = hook("alpha-hook");
    stack_hook["organizationName"] = json!(org);
    stack_hook["projectName"] = json!("proj");
    stack_hook["stackName"] = json!("alpha");
    assert_eq!(c.post(&format!("{}/hooks", stacks[0].0), &stack_hook).await.status, 200);
    Made { org, stacks, tokens }
}

async fn body(c: &Client, path: &str) -> Vec<u8> {
    let r = c.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {r:?}");
    r.body
}

async fn json_of(c: &Client, path: &str) -> Value {
    serde_json::from_slice(&body(c, path).await).expect("JSON reply")
}

/// Everything the API shows of the organization, for comparing two deployments.
async fn view(c: &Client, made: &Made) -> Vec<(String, Value)> {
    let orgs = format!("/api/orgs/{}", made.org);
    let mut out = Vec::new();
    for path in [
        orgs.clone(),
        format!("{orgs}/members"),
        format!("{orgs}/teams"),
        format!("{orgs}/teams/ops"),
        format!("{orgs}/tokens"),
        format!("{orgs}/teams/ops/tokens"),
        format!("{orgs}/hooks"),
        format!("/api/user/stacks?organization={}", made.org),
    ] {
        out.push((path.clone(), json_of(c, &path).await));
    }
    for (stack, versions, _, _) in &made.stacks {
        for path in [
            stack.clone(),
            format!("{stack}/updates"),
            format!("{stack}/hooks"),
            format!("{stack}/teams"),
        ] {
            out.push((path.clone(), json_of(c, &path).await));
        }
        // Deployments byte for byte, as `pulumi stack export` (and `--version`) get them.
        let mut paths = vec![format!("{stack}/export")];
        paths.extend((1..=*versions).map(|v| format!("{stack}/export/{v}")));
        for path in paths {
            let bytes = body(c, &path).await;
            out.push((path, Value::String(String::from_utf8_lossy(&bytes).into_owned())));
        }
    }
    out
}

/// The secrets of `made` decrypt on `srv` through `c`: the stacks' and both webhooks'.
async fn secrets_open(srv: &TestServer, c: &Client, made: &Made) {
    for (path, _, ciphertext, plaintext) in &made.stacks {
        assert_eq!(&decrypt(c, path, ciphertext).await, plaintext, "the secret of {path}");
    }
    let meta = srv.app.ports.meta.as_ref();
    let org_hook = webhooks::get(meta, &Owner::Org { org: made.org.clone() }, "org-wide")
        .await
        .expect("the organization's hook");
    let alpha = json_of(c, &made.stacks[0].0).await;
    let owner = Owner::Stack {
        org: made.org.clone(),
        project: "proj".into(),
        stack: "alpha".into(),
        stack_id: StackId::from_stored(alpha["id"].as_str().expect("stack id")),
    };
    let stack_hook = webhooks::get(meta, &owner, "alpha-hook").await.expect("the stack's hook");
    for hook in [org_hook, stack_hook] {
        let secret = webhooks::secret_of(&srv.app, &hook).await.expect("the hook's secret opens");
        assert_eq!(secret.as_deref(), Some(HOOK_SECRET.as_bytes()), "hook {}", hook.name);
    }
}

fn assert_same_view(a: &[(String, Value)], b: &[(String, Value)]) {
    assert_eq!(a.len(), b.len());
    for ((path, x), (_, y)) in a.iter().zip(b) {
        assert_eq!(x, y, "GET {path} differs after the import");
    }
}

/// The organization, exported from one backend and imported into another, reads the same
/// through every API the CLI uses: stacks with ids, tags and history, every version's
/// deployment byte for byte, teams, members, token listings, webhooks; its secrets decrypt; the
/// exported tokens authenticate; and its stacks take new updates.
pub async fn an_organization_moves_with_every_version_secret_and_token(from: Target, to: Target) {
    let aws_source = is_aws(&from);
    let a = TestServer::start(from).await;
    let made = populate(&a, 3).await;
    let before = view(&a.client(), &made).await;
    let archive = archive_for(&a, aws_source, "roundtrip");
    let org = OrgName::parse(&made.org).expect("org name");
    let done = backup::export(&a.app, &org, archive.as_ref(), &options()).await.expect("export");
    assert_eq!((done.stacks, done.versions), (3, 5), "{done:?}");

    let b = TestServer::start(to).await;
    let summary = backup::import(&b.app, archive.as_ref(), &import_options(PASSPHRASE))
        .await
        .expect("import");
    assert_eq!((summary.stacks, summary.versions), (3, 5));
    assert_eq!(summary.outcome, backup::Outcome::Imported);
    // The source's user token, imported as a hash, authenticates on the target.
    let cb = b.client_with(Some(&a.token));
    assert_same_view(&before, &view(&cb, &made).await);
    // Each side's audit log says what the operator did to it.
    for (srv, action) in [(&a, "org-export"), (&b, "org-import")] {
        let c = srv.client_with(Some(&a.token));
        let log = json_of(&c, &format!("/api/orgs/{}/auditlogs", made.org)).await;
        assert!(log.to_string().contains(action), "no {action} entry in {log}");
    }
    secrets_open(&b, &cb, &made).await;
    for token in &made.tokens {
        let r = b.client_with(Some(token)).get("/api/user").await;
        assert_eq!(r.status, 200, "an imported organization or team token: {r:?}");
    }
    // The stacks are not locked by anything that ran on the source, and take new versions.
    let (alpha, _, ciphertext, _) = &made.stacks[0];
    session::up(&cb, alpha, &[], &[state("proj", "alpha", 4, ciphertext)]).await;
    assert_eq!(json_of(&cb, alpha).await["version"], 4);
    // The source is untouched by being exported.
    assert_same_view(&before, &view(&a.client(), &made).await);
    a.stop().await;
    b.stop().await;
}

/// An export taken while an update runs (checkpoints posted, not completed) holds the stack at
/// its last published version, without the running update, and imports into an idle stack.
pub async fn an_export_during_an_update_holds_only_published_versions(from: Target, to: Target) {
    let aws_source = is_aws(&from);
    let a = TestServer::start(from).await;
    let made = populate(&a, 2).await;
    let c = a.client();
    let alpha = made.stacks[0].0.clone();
    let published = body(&c, &format!("{alpha}/export")).await;
    let run = session::create_and_start(&c, &alpha, "update", false).await.expect("update starts");
    let r = run.checkpoint(&c, &state("proj", "alpha", 3, "x")).await;
    assert!(r.status.is_success(), "{r:?}");
    let (journaled, _) = session::create_and_start_journal(&c, &made.stacks[1].0, "update").await;

    let archive = archive_for(&a, aws_source, "running");
    let org = OrgName::parse(&made.org).expect("org name");
    backup::export(&a.app, &org, archive.as_ref(), &options()).await.expect("export");
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    assert!(journaled.complete(&c, "succeeded").await.status.is_success());
    assert_eq!(json_of(&c, &alpha).await["version"], 3, "the update published after the export");

    let manifest: Value = serde_json::from_slice(
        &archive.read("manifest.json").await.expect("read").expect("a manifest"),
    )
    .expect("manifest JSON");
    let entry = manifest["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .find(|s| s["stack"] == "alpha")
        .expect("alpha in the manifest")
        .clone();
    assert_eq!((entry["version"].clone(), entry["versions"].clone()), (json!(2), json!([1, 2])));

    let b = TestServer::start(to).await;
    backup::import(&b.app, archive.as_ref(), &import_options(PASSPHRASE)).await.expect("import");
    let cb = b.client_with(Some(&a.token));
    assert_eq!(body(&cb, &format!("{alpha}/export")).await, published);
    let stack = json_of(&cb, &alpha).await;
    assert_eq!((stack["version"].clone(), stack["activeUpdate"].clone()), (json!(2), json!("")));
    for (path, _, _, _) in &made.stacks {
        // No update of the source holds a lease here: each stack starts one at once.
        let run = session::create_and_start(&cb, path, "update", false).await.expect("starts");
        assert!(run.complete(&cb, "succeeded").await.status.is_success());
    }
    a.stop().await;
    b.stop().await;
}

/// Every item of the organization's partition on `srv` (empty when it does not exist).
async fn org_items(srv: &TestServer, org: &str) -> usize {
    let q = Query {
        pk: format!("ORG#{org}"),
        sk: SortKey::All,
        ascending: true,
        limit: 1000,
        after: None,
    };
    srv.app.ports.meta.query(q).await.expect("query").items.len()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A damaged copy of the export at `good`, made by `damage` on the copy's directory.
fn damaged(good: &Path, damage: impl FnOnce(&Path)) -> DirArchive {
    let dir = temp_dir("damaged");
    std::fs::create_dir_all(&dir).expect("mkdir");
    copy_dir(good, &dir);
    damage(&dir);
    DirArchive::new(&dir)
}

/// Damaged exports, a wrong passphrase and a non-empty organization are refused with a message
/// that says which, and the target is left as it was.
pub async fn bad_imports_are_refused_and_change_nothing(from: Target, to: Target) {
    let a = TestServer::start(from).await;
    let made = populate(&a, 1).await;
    let dir = temp_dir("bad");
    let org = OrgName::parse(&made.org).expect("org name");
    backup::export(&a.app, &org, &DirArchive::new(&dir), &options()).await.expect("export");
    let b = TestServer::start(to).await;
    // Between two embedded servers, the target's bootstrap made the same organization (item
    // and member): that counts as empty, and must stay as it is.
    let untouched = org_items(&b, &made.org).await;

    let first_blob = |root: &Path| {
        let versions = std::fs::read_dir(root.join("stacks"))
            .expect("stacks")
            .map(|e| e.expect("entry").path().join("versions"))
            .find(|p| p.exists())
            .expect("a stack with versions");
        std::fs::read_dir(versions).expect("versions").next().expect("a version").expect("e").path()
    };
    let cases: Vec<(&str, DirArchive, &str)> = vec![
        ("an empty directory", DirArchive::new(&temp_dir("none")), "no manifest.json"),
        (
            "a truncated manifest",
            damaged(&dir, |d| {
                let m = std::fs::read(d.join("manifest.json")).expect("manifest");
                std::fs::write(d.join("manifest.json"), &m[..m.len() / 2]).expect("write");
            }),
            "not a valid export file",
        ),
        (
            "a damaged deployment",
            damaged(&dir, |d| {
                let path = first_blob(d);
                let mut bytes = std::fs::read(&path).expect("blob");
                bytes[10] ^= 0xff;
                std::fs::write(&path, bytes).expect("write");
            }),
            "damaged",
        ),
        (
            "a record changed and its digest updated without the passphrase",
            damaged(&dir, |d| {
                let tokens = d.join("records/tokens.json");
                let text = std::fs::read_to_string(&tokens).expect("tokens");
                let forged = text.replacen("\"ci\"", "\"forged\"", 1).into_bytes();
                assert_ne!(forged, text.as_bytes(), "the export has a token named ci");
                std::fs::write(&tokens, &forged).expect("write");
                let mut m: Value = serde_json::from_slice(
                    &std::fs::read(d.join("manifest.json")).expect("manifest"),
                )
                .expect("manifest JSON");
                for f in m["files"].as_array_mut().expect("files") {
                    if f["path"] == "records/tokens.json" {
                        f["sha256"] = json!(hex::encode(Sha256::digest(&forged)));
                        f["bytes"] = json!(forged.len());
                    }
                }
                let body = serde_json::to_vec_pretty(&m).expect("JSON");
                std::fs::write(d.join("manifest.json"), body).expect("write");
            }),
            "altered after the export",
        ),
        (
            "a missing records file",
            damaged(&dir, |d| std::fs::remove_file(d.join("records/tokens.json")).expect("rm")),
            "missing",
        ),
    ];
    for (what, archive, says) in cases {
        let err =
            backup::import(&b.app, &archive, &import_options(PASSPHRASE)).await.expect_err(what);
        assert!(err.to_string().contains(says), "{what}: {err} should say {says:?}");
        assert_eq!(org_items(&b, &made.org).await, untouched, "{what} changed the target");
    }
    let good = DirArchive::new(&dir);
    let err = backup::import(&b.app, &good, &import_options("not the passphrase at all"))
        .await
        .expect_err("a wrong passphrase");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    assert_eq!(org_items(&b, &made.org).await, untouched, "a wrong passphrase changed it");

    backup::import(&b.app, &good, &import_options(PASSPHRASE)).await.expect("import");
    let cb = b.client_with(Some(&a.token));
    let imported = view(&cb, &made).await;
    let items = org_items(&b, &made.org).await;
    // The same export again does nothing; another one finds the organization not empty.
    let again = backup::import(&b.app, &good, &import_options(PASSPHRASE)).await.expect("again");
    assert_eq!(again.outcome, backup::Outcome::AlreadyImported);
    let newer = temp_dir("newer");
    backup::export(&a.app, &org, &DirArchive::new(&newer), &options()).await.expect("export");
    let err = backup::import(&b.app, &DirArchive::new(&newer), &import_options(PASSPHRASE))
        .await
        .expect_err("a non-empty organization");
    assert!(matches!(err, stackhouse::Error::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("is not empty"), "{err}");
    assert_eq!(org_items(&b, &made.org).await, items);
    assert_same_view(&imported, &view(&cb, &made).await);
    // An export never overwrites another.
    let err = backup::export(&a.app, &org, &DirArchive::new(&dir), &options())
        .await
        .expect_err("an export over an export");
    assert!(err.to_string().contains("holds an export already"), "{err}");
    a.stop().await;
    b.stop().await;
}

/// An import that crashes at its K-th write, before or after the write lands, finishes when
/// run again on the same storage, for every K, and the result reads as an uninterrupted import.
pub async fn a_crashed_import_finishes_when_run_again(from: Target, to: fn() -> Target) {
    let a = TestServer::start(from).await;
    let made = populate(&a, 2).await;
    let dir = temp_dir("crash");
    let org = OrgName::parse(&made.org).expect("org name");
    backup::export(&a.app, &org, &DirArchive::new(&dir), &options()).await.expect("export");
    let archive = DirArchive::new(&dir);
    let reference = view(&a.client(), &made).await;

    let fault = Fault::new();
    let clean = TestServer::start_wrapped(to(), Settings::default(), |p| faulty(p, &fault)).await;
    let start = fault.writes();
    backup::import(&clean.app, &archive, &import_options(PASSPHRASE)).await.expect("import");
    let writes = fault.writes() - start;
    assert!(writes > 10, "an import writes every record: {writes}");
    clean.stop().await;

    for k in 0..writes {
        for when in [When::Before, When::After] {
            let fault = Fault::new();
            let b =
                TestServer::start_wrapped(to(), Settings::default(), |p| faulty(p, &fault)).await;
            fault.arm(k, when);
            let crashed = backup::import(&b.app, &archive, &import_options(PASSPHRASE)).await;
            assert!(crashed.is_err() && fault.crashed(), "write {k} {when:?} must crash it");
            fault.restart();
            let again = backup::import(&b.app, &archive, &import_options(PASSPHRASE))
                .await
                .unwrap_or_else(|e| panic!("re-run after a crash at write {k} {when:?}: {e}"));
            // The marker is the first write; marking it finished the one before last, then the
            // audit entry (lost if that very write fails: the known gap of the audit log).
            let expected = match (k, when) {
                (0, When::Before) => backup::Outcome::Imported,
                _ if k + 1 == writes => backup::Outcome::AlreadyImported,
                _ if k + 2 == writes && when == When::After => backup::Outcome::AlreadyImported,
                _ => backup::Outcome::Resumed,
            };
            assert_eq!(again.outcome, expected, "write {k} {when:?}");
            let cb = b.client_with(Some(&a.token));
            assert_same_view(&reference, &view(&cb, &made).await);
            secrets_open(&b, &cb, &made).await;
            b.stop().await;
        }
    }
    a.stop().await;
}
