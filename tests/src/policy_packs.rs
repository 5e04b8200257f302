//! Policy packs and groups over real HTTP, as `pulumi policy publish/enable/disable/ls/rm` and
//! an update's creation call them, and the artifact storage under them: uploads straight to a
//! presigned URL, archives stored once by content, collection of what nothing refers to, quotas,
//! and what another organization can reach. The `policy_packs_tests!` macro runs every check
//! against one backend.

use serde_json::{json, Value};

use crate::server::{Client, Reply, Target, TestServer};
use stackhouse::service::artifacts;

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! policy_packs_tests {
    ($target:expr) => {
        $crate::policy_packs_tests!(@each $target;
            publish_complete_list_and_get,
            a_version_tag_is_published_once,
            identical_archives_are_stored_once,
            complete_without_an_upload_references_nothing,
            a_checked_upload_that_differs_is_refused,
            enabled_packs_are_required_by_updates_until_disabled,
            enabled_versions_cannot_be_removed,
            groups_name_their_stacks,
            collection_removes_exactly_the_unreferenced_archives,
            abandoned_uploads_are_collected,
            quotas_refuse_more_versions,
            other_organizations_cannot_reach_packs
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::policy_packs::$name(make(stringify!($name))).await;
            }
        )*
    };
}

fn show(r: &Reply) -> String {
    format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
}

fn packs(org: &str) -> String {
    format!("/api/orgs/{org}/policypacks")
}

fn group(org: &str, name: &str) -> String {
    format!("/api/orgs/{org}/policygroups/{name}")
}

/// What `pulumi policy publish` sends for a pack with one mandatory policy.
fn request(name: &str, tag: &str) -> Value {
    json!({"name": name, "displayName": format!("{name} pack"), "versionTag": tag,
           "runtime": "nodejs",
           "policies": [{"name": "no-public-buckets", "displayName": "No public buckets",
                         "description": "buckets must be private",
                         "enforcementLevel": "mandatory", "message": "",
                         "configSchema": {"type": "object",
                                          "properties": {"allowed": {"type": "array"}}}}]})
}

/// A distinct fake archive per `seed`.
fn archive(seed: &str) -> Vec<u8> {
    crate::server::gzip(format!("policy pack archive {seed}").as_bytes())
}

/// Starts publishing; returns the upload URL.
async fn start(c: &Client, org: &str, name: &str, tag: &str) -> String {
    let r = c.post(&packs(org), &request(name, tag)).await;
    assert_eq!(r.status, 200, "publish {name}@{tag}: {}", show(&r));
    assert!(r.json()["version"].as_i64().is_some_and(|v| v >= 1), "{}", show(&r));
    r.json()["uploadURI"].as_str().expect("uploadURI").to_string()
}

/// PUTs bytes to an upload URL as the CLI does: no credentials, only the URL.
async fn upload(url: &str, bytes: &[u8]) {
    let resp = reqwest::Client::new()
        .put(url)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert!(resp.status().is_success(), "PUT {url}: {}", resp.status());
}

fn complete_path(org: &str, name: &str, tag: &str) -> String {
    format!("{}/{name}/versions/{tag}/complete", packs(org))
}

/// Publishes `name@tag` with `bytes` as its archive, all three steps.
async fn publish(c: &Client, org: &str, name: &str, tag: &str, bytes: &[u8]) {
    let url = start(c, org, name, tag).await;
    upload(&url, bytes).await;
    let r = c.post(&complete_path(org, name, tag), &json!({})).await;
    assert_eq!(r.status, 204, "complete {name}@{tag}: {}", show(&r));
}

/// Keys of stored archives.
async fn stored(srv: &TestServer) -> Vec<String> {
    let list = srv.app.ports.blobs.list(artifacts::STORED_PREFIX, None).await.expect("list");
    list.keys
}

async fn uploads(srv: &TestServer) -> Vec<String> {
    srv.app.ports.blobs.list(artifacts::UPLOAD_PREFIX, None).await.expect("list").keys
}

/// Runs `job-artifact-gc` as its schedule would, at the server's clock.
async fn collect(srv: &TestServer) -> Value {
    let job = &stackhouse::jobs::table::JOB_ARTIFACT_GC;
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event",
                       "time": "2026-12-04T00:00:00Z"});
    stackhouse::jobs::invocation::handle(&srv.app, job, event).await.expect("the job runs")
}

/// Moves the server's clock past upload URLs and the orphan grace period.
fn age(srv: &TestServer) {
    srv.app
        .clock
        .advance(srv.app.settings.orphan_grace_seconds + artifacts::UPLOAD_URL_SECONDS as i64 + 10);
}

/// Undoes [`age`].
fn unage(srv: &TestServer) {
    srv.app.clock.advance(
        -(srv.app.settings.orphan_grace_seconds + artifacts::UPLOAD_URL_SECONDS as i64 + 10),
    );
}

/// Creates `project/stack` in the caller's organization.
async fn stack(c: &Client, org: &str, project: &str, stack: &str) -> String {
    let r = c.post(&format!("/api/stacks/{org}/{project}"), &json!({"stackName": stack})).await;
    assert_eq!(r.status, 200, "create {project}/{stack}: {}", show(&r));
    format!("/api/stacks/{org}/{project}/{stack}")
}

/// The `requiredPolicies` an update of the stack at `s` is created with.
async fn required_by_update(c: &Client, s: &str) -> Value {
    let body = json!({"config": {}, "metadata": {"message": "m", "environment": {}},
                      "options": {"dryRun": true}});
    let r = c.post(&format!("{s}/preview"), &body).await;
    assert_eq!(r.status, 200, "create a preview: {}", show(&r));
    r.json().get("requiredPolicies").cloned().unwrap_or(json!([]))
}

pub async fn publish_complete_list_and_get(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let url = start(&c, &org, "guard", "1.0.0").await;
    // Not listed, not gettable, until complete.
    assert_eq!(c.get(&packs(&org)).await.json()["policyPacks"], json!([]));
    let get = format!("{}/guard/versions/1.0.0", packs(&org));
    assert_eq!(c.get(&get).await.status, 404);
    upload(&url, &archive("a")).await;
    let r = c.post(&complete_path(&org, "guard", "1.0.0"), &json!({})).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    // Completing again (a retried call) changes nothing.
    let r = c.post(&complete_path(&org, "guard", "1.0.0"), &json!({})).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    publish(&c, &org, "guard", "1.1.0", &archive("b")).await;

    let list = c.get(&packs(&org)).await.json();
    assert_eq!(
        list["policyPacks"],
        json!([{"name": "guard", "displayName": "guard pack", "versions": [1, 2],
                "versionTags": ["1.0.0", "1.1.0"]}]),
        "{list}"
    );
    let v = c.get(&get).await;
    assert_eq!(v.status, 200, "{}", show(&v));
    let v = v.json();
    assert_eq!((v["version"].as_i64(), v["versionTag"].as_str()), (Some(1), Some("1.0.0")));
    assert_eq!(v["policies"][0]["enforcementLevel"], "mandatory");
    assert_eq!(v["applied"], false);
    let schema = c.get(&format!("{get}/schema")).await.json();
    assert_eq!(
        schema["configSchema"]["no-public-buckets"]["properties"]["allowed"]["type"],
        "array"
    );
    // The registry's view of the same packs.
    let registry = c.get("/api/registry/policypacks").await.json();
    let entry = &registry["policyPacks"][0];
    assert_eq!(entry["id"], format!("private/{org}/guard@1.1.0"), "the newest: {registry}");
    assert_eq!(
        (entry["accessLevel"].as_str(), entry["publisher"].as_str()),
        (Some("full"), Some(org.as_str()))
    );
    let versions = c.get(&format!("/api/registry/policypacks/private/{org}/guard/versions")).await;
    assert_eq!(versions.json()["policyPacks"].as_array().map(Vec::len), Some(2));
    let tagged =
        c.get(&format!("/api/orgs/{org}/registry/policypacks/guard?tag=1.0.0")).await.json();
    assert_eq!(tagged["policyPack"]["version"], "1.0.0", "{tagged}");
    assert_eq!(tagged["policies"][0]["name"], "no-public-buckets");
    // Bad names are refused before anything is stored.
    let r = c.post(&packs(&org), &request("bad/name", "1")).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    let r = c.post(&packs(&org), &request("ok", "1 0")).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert_eq!(c.get(&packs(&org)).await.json()["policyPacks"].as_array().map(Vec::len), Some(1));
    srv.stop().await;
}

pub async fn a_version_tag_is_published_once(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    publish(&c, &org, "guard", "1.0.0", &archive("a")).await;
    let r = c.post(&packs(&org), &request("guard", "1.0.0")).await;
    assert_eq!(r.status, 409, "{}", show(&r));
    assert!(r.error_message(409).contains("already published"), "{}", show(&r));
    // A pending version (its upload abandoned) may be published again, keeping its number.
    let first = c.post(&packs(&org), &request("guard", "2.0.0")).await.json();
    let again = c.post(&packs(&org), &request("guard", "2.0.0")).await.json();
    assert_eq!(first["version"], again["version"]);
    assert_ne!(first["uploadURI"], again["uploadURI"]);
    upload(again["uploadURI"].as_str().expect("url"), &archive("b")).await;
    let r = c.post(&complete_path(&org, "guard", "2.0.0"), &json!({})).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    srv.stop().await;
}

pub async fn identical_archives_are_stored_once(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let same = archive("same");
    publish(&c, &org, "guard", "1.0.0", &same).await;
    publish(&c, &org, "other", "1.0.0", &same).await;
    publish(&c, &org, "guard", "1.0.1", &archive("different")).await;
    assert_eq!(stored(&srv).await.len(), 2, "one blob per distinct archive");
    assert!(uploads(&srv).await.is_empty(), "completed uploads are removed");
    age(&srv);
    assert_eq!(collect(&srv).await["uploads"], 0, "and so are their records");
    unage(&srv);
    let usage = artifacts::usage(srv.app.ports.meta.as_ref(), &org).await.expect("usage");
    assert_eq!(usage.0, 3, "three versions count against the quota");
    // Removing one of the two versions of the shared archive keeps it for the other.
    let r = c.delete(&format!("{}/other", packs(&org))).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    age(&srv);
    collect(&srv).await;
    assert_eq!(stored(&srv).await.len(), 2, "the shared archive is still referenced");
    srv.stop().await;
}

pub async fn complete_without_an_upload_references_nothing(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    start(&c, &org, "guard", "1.0.0").await;
    let r = c.post(&complete_path(&org, "guard", "1.0.0"), &json!({})).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert!(r.error_message(400).contains("nothing was uploaded"), "{}", show(&r));
    assert!(stored(&srv).await.is_empty());
    assert_eq!(c.get(&packs(&org)).await.json()["policyPacks"], json!([]));
    let usage = artifacts::usage(srv.app.ports.meta.as_ref(), &org).await.expect("usage");
    assert_eq!(usage, (0, 0));
    srv.stop().await;
}

/// Clients that name what they uploaded (the private registry's) get a mismatch refused, and
/// nothing is stored under the archive's hash.
pub async fn a_checked_upload_that_differs_is_refused(target: Target) {
    let srv = TestServer::start(target).await;
    let up = artifacts::begin(&srv.app, &srv.user).await.expect("begin");
    upload(&up.url, b"twelve bytes").await;
    let wrong_size = artifacts::Expect { size: Some(13), sha256: None };
    let err = artifacts::store(&srv.app, &up.key, wrong_size).await.expect_err("size");
    assert_eq!(err.status().as_u16(), 400, "{err}");
    let wrong_hash = artifacts::Expect { size: Some(12), sha256: Some(&"0".repeat(64)) };
    let err = artifacts::store(&srv.app, &up.key, wrong_hash).await.expect_err("hash");
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert!(stored(&srv).await.is_empty(), "nothing stored by content");
    srv.stop().await;
}

pub async fn enabled_packs_are_required_by_updates_until_disabled(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "web", "dev").await;
    let bytes = archive("required");
    publish(&c, &org, "guard", "1.0.0", &bytes).await;
    publish(&c, &org, "guard", "1.1.0", &archive("newer")).await;
    assert_eq!(required_by_update(&c, &s).await, json!([]));
    // `pulumi policy enable org/guard 1.0.0 --config …` (the default group).
    let enable = json!({"addPolicyPack": {"name": "guard", "versionTag": "1.0.0",
                        "config": {"no-public-buckets": {"allowed": ["logs"]}}}});
    let r = c.patch(&group(&org, "default-policy-group"), &enable).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    let required = required_by_update(&c, &s).await;
    assert_eq!(required.as_array().map(Vec::len), Some(1), "{required}");
    let p = &required[0];
    assert_eq!((p["name"].as_str(), p["versionTag"].as_str()), (Some("guard"), Some("1.0.0")));
    assert_eq!(p["config"]["no-public-buckets"]["allowed"], json!(["logs"]));
    // The location is a plain GET, no credentials, of exactly the uploaded bytes.
    let url = p["packLocation"].as_str().expect("packLocation");
    let got = reqwest::get(url).await.expect("download");
    assert_eq!(got.status().as_u16(), 200, "GET {url}");
    assert_eq!(got.bytes().await.expect("body").as_ref(), bytes.as_slice());
    // `pulumi policy install` asks the same.
    let listed = c.get(&format!("{s}/policypacks")).await.json();
    assert_eq!(listed["requiredPolicies"][0]["versionTag"], "1.0.0");
    // `latest` (no tag) enables the newest version instead.
    let r = c
        .patch(&group(&org, "default-policy-group"), &json!({"addPolicyPack": {"name": "guard"}}))
        .await;
    assert_eq!(r.status, 204, "{}", show(&r));
    assert_eq!(required_by_update(&c, &s).await[0]["versionTag"], "1.1.0");
    let v = c.get(&format!("{}/guard/versions/1.1.0", packs(&org))).await.json();
    assert_eq!(v["applied"], true);
    // `pulumi policy disable org/guard`.
    let r = c
        .patch(
            &group(&org, "default-policy-group"),
            &json!({"removePolicyPack": {"name": "guard"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", show(&r));
    assert_eq!(required_by_update(&c, &s).await, json!([]));
    // Enabling a version that does not exist changes nothing.
    let r = c
        .patch(
            &group(&org, "default-policy-group"),
            &json!({"addPolicyPack": {"name": "guard", "versionTag": "9.9.9"}}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", show(&r));
    assert_eq!(required_by_update(&c, &s).await, json!([]));
    srv.stop().await;
}

pub async fn enabled_versions_cannot_be_removed(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    publish(&c, &org, "guard", "1.0.0", &archive("a")).await;
    let enable = json!({"addPolicyPack": {"name": "guard", "versionTag": "1.0.0"}});
    assert_eq!(c.patch(&group(&org, "default-policy-group"), &enable).await.status, 204);
    let version = format!("{}/guard/versions/1.0.0", packs(&org));
    for path in [version.clone(), format!("{}/guard", packs(&org))] {
        let r = c.delete(&path).await;
        assert_eq!(r.status, 400, "{}", show(&r));
        assert!(r.error_message(400).contains("default-policy-group"), "{}", show(&r));
    }
    assert_eq!(c.get(&version).await.status, 200, "still there");
    let disable = json!({"removePolicyPack": {"name": "guard"}});
    assert_eq!(c.patch(&group(&org, "default-policy-group"), &disable).await.status, 204);
    assert_eq!(c.delete(&version).await.status, 204);
    assert_eq!(c.get(&version).await.status, 404);
    // A retried delete finds nothing to do.
    assert_eq!(c.delete(&version).await.status, 404);
    srv.stop().await;
}

pub async fn groups_name_their_stacks(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let dev = stack(&c, &org, "web", "dev").await;
    let prod = stack(&c, &org, "web", "prod").await;
    publish(&c, &org, "guard", "1.0.0", &archive("a")).await;
    let r = c.post(&format!("/api/orgs/{org}/policygroups"), &json!({"name": "production"})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let r = c.post(&format!("/api/orgs/{org}/policygroups"), &json!({"name": "production"})).await;
    assert_eq!(r.status, 409, "{}", show(&r));
    // One batch: the stack and the pack, all or none.
    let batch = json!([{"addStack": {"name": "prod", "routingProject": "web"}},
                       {"addPolicyPack": {"name": "guard", "versionTag": "1.0.0"}}]);
    let r = c.post(&format!("{}/batch", group(&org, "production")), &batch).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    let bad = json!([{"addStack": {"name": "dev", "routingProject": "web"}},
                     {"addStack": {"name": "nope", "routingProject": "web"}}]);
    let r = c.post(&format!("{}/batch", group(&org, "production")), &bad).await;
    assert_eq!(r.status, 404, "an unknown stack: {}", show(&r));
    assert_eq!(required_by_update(&c, &dev).await, json!([]), "dev was not added");
    assert_eq!(required_by_update(&c, &prod).await[0]["name"], "guard");

    let g = c.get(&group(&org, "production")).await.json();
    assert_eq!(g["stacks"], json!([{"name": "prod", "routingProject": "web"}]), "{g}");
    assert_eq!(g["appliedPolicyPacks"][0]["versionTag"], "1.0.0");
    assert_eq!(g["isOrgDefault"], false);
    let list = c.get(&format!("/api/orgs/{org}/policygroups")).await.json();
    let names: Vec<(&str, i64)> = list["policyGroups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["name"].as_str().unwrap_or(""), g["numStacks"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(names, [("default-policy-group", 2), ("production", 1)], "{list}");
    // Stacks removed from the default group leave it.
    let rm = json!({"removeStack": {"name": "dev", "routingProject": "web"}});
    assert_eq!(c.patch(&group(&org, "default-policy-group"), &rm).await.status, 204);
    let d = c.get(&group(&org, "default-policy-group")).await.json();
    assert_eq!(d["stacks"], json!([{"name": "prod", "routingProject": "web"}]), "{d}");
    // What this server does not do is refused, not ignored.
    let rule = json!({"stackMatchRule": {"operator": "and", "operands": []}});
    let r = c.patch(&group(&org, "production"), &rule).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert!(r.error_message(400).contains("stackMatchRule"), "{}", show(&r));
    // Rename, then delete; the default group stays.
    let r = c.patch(&group(&org, "production"), &json!({"newName": "prod-guard"})).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    assert_eq!(c.get(&group(&org, "production")).await.status, 404);
    assert_eq!(required_by_update(&c, &prod).await[0]["name"], "guard");
    assert_eq!(c.delete(&group(&org, "prod-guard")).await.status, 204);
    assert_eq!(c.delete(&group(&org, "default-policy-group")).await.status, 400);
    assert_eq!(required_by_update(&c, &prod).await, json!([]));
    srv.stop().await;
}

pub async fn collection_removes_exactly_the_unreferenced_archives(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    publish(&c, &org, "keep", "1.0.0", &archive("keep")).await;
    publish(&c, &org, "drop", "1.0.0", &archive("drop")).await;
    let before = stored(&srv).await;
    assert_eq!(before.len(), 2);
    assert_eq!(c.delete(&format!("{}/drop", packs(&org))).await.status, 204);
    // Within the grace period nothing goes.
    let out = collect(&srv).await;
    assert_eq!(out["artifacts"], 0, "{out}");
    assert_eq!(stored(&srv).await, before);
    age(&srv);
    let out = collect(&srv).await;
    assert_eq!(out["artifacts"], 1, "{out}");
    let after = stored(&srv).await;
    assert_eq!(after.len(), 1);
    // Back to the wall clock, which the embedded store signs URLs by.
    unage(&srv);
    // The survivor is the referenced one: it still downloads.
    let enable = json!({"addPolicyPack": {"name": "keep", "versionTag": "1.0.0"}});
    assert_eq!(c.patch(&group(&org, "default-policy-group"), &enable).await.status, 204);
    let s = stack(&c, &org, "web", "dev").await;
    let url = c.get(&format!("{s}/policypacks")).await.json()["requiredPolicies"][0]
        ["packLocation"]
        .as_str()
        .expect("location")
        .to_string();
    let got = reqwest::get(&url).await.expect("download").bytes().await.expect("body");
    assert_eq!(got.as_ref(), archive("keep").as_slice());
    // A blob left without a head (an owner failed after storing it) is adopted, then collected.
    let stray = artifacts::stored_key(&"ab".repeat(32));
    srv.app.ports.blobs.put(&stray, bytes::Bytes::from_static(b"stray")).await.expect("put");
    assert_eq!(collect(&srv).await["artifacts"], 0, "adopted, not yet old");
    age(&srv);
    assert_eq!(collect(&srv).await["artifacts"], 1);
    assert_eq!(stored(&srv).await, after);
    srv.stop().await;
}

pub async fn abandoned_uploads_are_collected(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let url = start(&c, &org, "guard", "1.0.0").await;
    upload(&url, &archive("never completed")).await;
    assert_eq!(uploads(&srv).await.len(), 1);
    assert_eq!(collect(&srv).await["uploads"], 0, "not expired yet");
    age(&srv);
    assert_eq!(collect(&srv).await["uploads"], 1);
    assert!(uploads(&srv).await.is_empty());
    assert!(stored(&srv).await.is_empty());
    let r = c.post(&complete_path(&org, "guard", "1.0.0"), &json!({})).await;
    assert_eq!(r.status, 400, "the upload is gone: {}", show(&r));
    srv.stop().await;
}

pub async fn quotas_refuse_more_versions(target: Target) {
    let settings = stackhouse::app::Settings { artifact_quota_count: 2, ..Default::default() };
    let srv = TestServer::start_with(target, settings).await;
    let (c, org) = (srv.client(), srv.user.clone());
    publish(&c, &org, "guard", "1", &archive("1")).await;
    publish(&c, &org, "guard", "2", &archive("2")).await;
    let r = c.post(&packs(&org), &request("guard", "3")).await;
    assert_eq!(r.status, 409, "{}", show(&r));
    assert!(r.error_message(409).contains("quota"), "{}", show(&r));
    // Deleting a version frees its place.
    assert_eq!(c.delete(&format!("{}/guard/versions/1", packs(&org))).await.status, 204);
    publish(&c, &org, "guard", "3", &archive("3")).await;
    srv.stop().await;
}

pub async fn other_organizations_cannot_reach_packs(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    publish(&c, &org, "guard", "1.0.0", &archive("a")).await;
    let eve = srv.other_user("eve-packs").await;
    for path in [
        packs(&org),
        format!("{}/guard/versions/1.0.0", packs(&org)),
        format!("/api/orgs/{org}/policygroups"),
    ] {
        let r = eve.get(&path).await;
        assert!(matches!(r.status.as_u16(), 403 | 404), "{path}: {}", show(&r));
    }
    let r = eve.post(&complete_path(&org, "guard", "1.0.0"), &json!({})).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{}", show(&r));
    // In her own organization the pack does not exist: she cannot enable it.
    let enable = json!({"addPolicyPack": {"name": "guard", "versionTag": "1.0.0"}});
    let r = eve.patch(&group("eve-packs", "default-policy-group"), &enable).await;
    assert_eq!(r.status, 404, "{}", show(&r));
    assert_eq!(eve.get(&packs("eve-packs")).await.json()["policyPacks"], json!([]));
    // A member who is no admin may read but not publish.
    let r = c.post(&format!("/api/orgs/{org}/members/eve-packs"), &json!({"role": "member"})).await;
    assert!(r.status.is_success(), "{}", show(&r));
    assert_eq!(eve.get(&packs(&org)).await.status, 200);
    let r = eve.post(&packs(&org), &request("mine", "1")).await;
    assert_eq!(r.status, 403, "{}", show(&r));
    srv.stop().await;
}
