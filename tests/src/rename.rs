//! Conformance check of `pulumi stack rename` (docs/PROTOCOL-NOTES.md: Stacks, #12; Service
//! secrets provider; Stack rename), run through the `conformance_tests!` macro on every backend.

use serde_json::{json, Value};

use crate::fixtures;
use crate::secrets::{b64, unb64};
use crate::server::{Client, Reply, TestServer};
use crate::session::{self, create_and_start};

const SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
const RESOURCE_REFERENCE_SIG: &str = "5cf8f73096256a8f31e491e813e4eb8e";
const ASSET_SIGS: [&str; 2] =
    ["c44067f5952c0a294b673a41bacd8c17", "0def7320c3a5731c473e5ecbe6d01bc7"];

/// The checkpoint-v3 fixture as a deployment of `owner/project/stack`, with what a program run
/// by the CLI adds: the root stack resource (a parent, and referenced from the stack outputs)
/// and the `service` secrets provider.
fn state_for(owner: &str, project: &str, stack: &str) -> Value {
    let text = fixtures::untyped_deployment("checkpoint-v3")
        .to_string()
        .replace("urn:pulumi:foo::countdown::", &format!("urn:pulumi:{stack}::{project}::"));
    let mut v: Value = serde_json::from_str(&text).expect("retargeted fixture");
    let root = format!("urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}");
    let deployment = &mut v["deployment"];
    deployment["secrets_providers"] = json!({"type": "service", "state": {
        "url": "https://api.example.test", "owner": owner, "project": project, "stack": stack}});
    let resources = deployment["resources"].as_array_mut().expect("fixture resources");
    let first = resources[0]["urn"].clone();
    resources[0]["parent"] = json!(root);
    resources.insert(
        0,
        json!({"urn": root, "custom": false, "type": "pulumi:pulumi:Stack",
               "outputs": {"topic": {SIG_KEY: RESOURCE_REFERENCE_SIG, "urn": first, "id": "t-1"}}}),
    );
    v
}

/// Strings containing `needle` outside assets and archives (the fixture's lambda code embeds
/// URNs as plain text, which a rename leaves alone as Pulumi does).
fn outside_assets(v: &Value, needle: &str, found: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains(needle) => found.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| outside_assets(i, needle, found)),
        Value::Object(map) => {
            let sig = map.get(SIG_KEY).and_then(Value::as_str).unwrap_or_default();
            if !ASSET_SIGS.contains(&sig) {
                map.values().for_each(|i| outside_assets(i, needle, found));
            }
        }
        _ => {}
    }
}

async fn encrypt(c: &Client, path: &str, plaintext: &[u8]) -> String {
    let r = c.post(&format!("{path}/encrypt"), &json!({"plaintext": b64(plaintext)})).await;
    assert_eq!(r.status, 200, "encrypt: {r:?}");
    r.json()["ciphertext"].as_str().expect("ciphertext").to_string()
}

async fn decrypt(c: &Client, path: &str, ciphertext: &str) -> Vec<u8> {
    let r = c.post(&format!("{path}/decrypt"), &json!({"ciphertext": ciphertext})).await;
    assert_eq!(r.status, 200, "decrypt: {r:?}");
    unb64(r.json()["plaintext"].as_str().expect("plaintext"))
}

async fn rename(c: &Client, path: &str, project: &str, stack: &str) -> Reply {
    c.post(&format!("{path}/rename"), &json!({"newName": stack, "newProject": project})).await
}

/// `pulumi stack rename org/app/prod` of `org/proj/dev`: the stack keeps its id, tags, history
/// and secrets; its deployment's URNs, root stack name and secrets provider follow the new
/// names in a new `rename` version; the old name is free again. Renames onto an existing stack,
/// during an update or to bad names are refused and change nothing.
pub async fn rename_moves_history_tags_and_secrets(target: crate::server::Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let user = server.user.clone();
    let old = format!("/api/stacks/{user}/proj/dev");
    let new = format!("/api/stacks/{user}/app/prod");
    let r = c.post(&format!("/api/stacks/{user}/proj"), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200, "create: {r:?}");
    let state = state_for(&user, "proj", "dev");
    session::up(&c, &old, &fixtures::events("up"), std::slice::from_ref(&state)).await;
    let tags = json!({"pulumi:project": "proj", "team": "platform"});
    assert!(c.patch(&format!("{old}/tags"), &tags).await.status.is_success());
    let ciphertext = encrypt(&c, &old, b"the secret").await;
    let before = c.get(&old).await.json();
    assert_eq!(before["version"], 1);

    let r = rename(&c, &old, "app", "prod").await;
    assert_eq!(r.status, 204, "rename: {r:?}");
    c.get(&old).await.error_message(404);
    c.get(&format!("{old}/export")).await.error_message(404);
    let after = c.get(&new).await.json();
    assert_eq!(after["id"], before["id"], "the stack keeps its id");
    assert_eq!(after["tags"], tags);
    assert_eq!(after["projectName"], "app");
    assert_eq!(after["stackName"], "prod");
    assert_eq!(after["version"], 2, "a rename is a new version");
    let listed = c.get("/api/user/stacks").await.json();
    let names: Vec<(&str, &str)> = listed["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .map(|s| (s["projectName"].as_str().unwrap(), s["stackName"].as_str().unwrap()))
        .collect();
    assert_eq!(names, vec![("app", "prod")]);

    // History: both entries, the rename newest.
    let history = c.get(&format!("{new}/updates")).await.json();
    let entries = history["updates"].as_array().expect("updates");
    let kinds: Vec<(&str, i64)> = entries
        .iter()
        .map(|u| (u["kind"].as_str().unwrap(), u["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("rename", 2), ("update", 1)]);
    assert_eq!(entries[0]["result"], "succeeded");
    assert_eq!(entries[0]["resourceCount"], 31);
    assert_eq!(c.get(&format!("{new}/updates/latest")).await.json()["info"]["kind"], "rename");

    // The export names the new stack everywhere; version 1 is kept as it was.
    let export = c.get(&format!("{new}/export")).await.json();
    let resources = export["deployment"]["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 31);
    for res in resources {
        assert!(res["urn"].as_str().unwrap().starts_with("urn:pulumi:prod::app::"), "{res}");
        if let Some(parent) = res.get("parent") {
            assert!(parent.as_str().unwrap().starts_with("urn:pulumi:prod::app::"), "{res}");
        }
    }
    let mut stale = Vec::new();
    outside_assets(&export, "urn:pulumi:dev::proj::", &mut stale);
    assert!(stale.is_empty(), "old URNs left: {stale:?}");
    let root = &resources[0];
    assert_eq!(root["type"], "pulumi:pulumi:Stack");
    assert_eq!(root["urn"], "urn:pulumi:prod::app::pulumi:pulumi:Stack::app-prod");
    assert_eq!(resources[1]["parent"], root["urn"]);
    assert_eq!(root["outputs"]["topic"]["urn"], resources[1]["urn"]);
    assert_eq!(root["outputs"]["topic"]["id"], "t-1");
    assert_eq!(export["deployment"]["secrets_providers"]["state"]["project"], "app");
    assert_eq!(export["deployment"]["secrets_providers"]["state"]["stack"], "prod");
    assert_eq!(export["deployment"]["secrets_providers"]["state"]["owner"], user.as_str());
    assert_eq!(export["deployment"]["manifest"], state["deployment"]["manifest"]);
    assert_eq!(c.get(&format!("{new}/export/1")).await.json(), state);
    assert_eq!(c.get(&format!("{new}/export/2")).await.json(), export);

    // Secrets encrypted under the old name decrypt under the new one.
    assert_eq!(decrypt(&c, &new, &ciphertext).await, b"the secret");

    // Unchanged names: nothing happens.
    assert_eq!(rename(&c, &new, "app", "prod").await.status, 204);
    assert_eq!(c.get(&new).await.json()["version"], 2);

    // The old name is free: a new, empty stack.
    let r = c.post(&format!("/api/stacks/{user}/proj"), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200, "re-create: {r:?}");
    let fresh = c.get(&old).await.json();
    assert_ne!(fresh["id"], before["id"]);
    assert_eq!(fresh["version"], 0);
    assert_eq!(c.get(&format!("{old}/export")).await.json()["deployment"].get("resources"), None);
    assert_eq!(c.get(&format!("{old}/updates")).await.json()["updates"], json!([]));

    // Onto an existing stack: 409, nothing changes.
    let message = rename(&c, &new, "proj", "dev").await.error_message(409);
    assert!(message.contains("already exists"), "{message}");
    assert_eq!(c.get(&new).await.json(), after);
    assert_eq!(c.get(&old).await.json(), fresh);

    // While an update runs: 409.
    let run = create_and_start(&c, &new, "refresh", false).await.expect("refresh starts");
    rename(&c, &new, "app", "later").await.error_message(409);
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    c.get(&format!("/api/stacks/{user}/app/later")).await.error_message(404);
    assert_eq!(c.get(&new).await.json()["version"], 3);

    // Bad names: 400.
    for body in [
        json!({"newName": "bad name", "newProject": "app"}),
        json!({"newName": "", "newProject": "app"}),
        json!({"newName": "ok", "newProject": "bad/project"}),
        json!({"newName": "ok", "newProject": ""}),
        json!({"newName": "x".repeat(101), "newProject": "app"}),
        json!({"newProject": "app"}),
        json!("prod"),
    ] {
        let r = c.post(&format!("{new}/rename"), &body).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        r.error_message(400);
    }
    assert_eq!(c.get(&new).await.json()["version"], 3);
    rename(&c, &format!("/api/stacks/{user}/app/nosuch"), "app", "x").await.error_message(404);
    server.stop().await;
}
