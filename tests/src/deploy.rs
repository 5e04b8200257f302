//! Pulumi Deployments over real HTTP: a stack's deployment settings as the REST API and the
//! Pulumi Service provider's `DeploymentSettings` resource use them (`PUT` replaces, `POST`
//! merges, `DELETE` answers whether there were any), secrets sealed for the stack; a run whose
//! runner stops reporting. (Runs with the real CLI: `cli_deploy.rs`.)

use serde_json::{json, Value};

use crate::server::{Client, Reply, Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! deploy_tests {
    ($target:expr) => {
        $crate::deploy_tests!(@each $target;
            settings_replace_merge_read_and_delete,
            settings_secrets_are_sealed_for_the_stack,
            bad_settings_are_refused_and_change_nothing,
            outsiders_cannot_read_or_change_settings,
            a_runner_that_stops_reporting_is_failed_by_the_reaper,
            paused_deployments_wait_until_resumed
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::deploy::$name(make(stringify!($name))).await;
            }
        )*
    };
}

const PROJECT: &str = "deployed";

fn show(r: &Reply) -> String {
    format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
}

/// Creates stack `name` of the caller's organization; its path.
async fn stack(c: &Client, org: &str, name: &str) -> String {
    let r = c.post(&format!("/api/stacks/{org}/{PROJECT}"), &json!({"stackName": name})).await;
    assert_eq!(r.status, 200, "create {name}: {}", show(&r));
    format!("/api/stacks/{org}/{PROJECT}/{name}")
}

fn settings() -> Value {
    json!({
        "sourceContext": {"git": {"repoUrl": "https://git.example.com/app.git", "branch": "main",
                                  "repoDir": "infra"}},
        "operationContext": {
            "environmentVariables": {"AWS_REGION": "eu-west-1", "API_KEY": {"secret": "hunter2"}},
            "options": {"skipInstallDependencies": true}
        },
        "executorContext": {"executorImage": "pulumi/pulumi:latest"}
    })
}

pub async fn settings_replace_merge_read_and_delete(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    let at = format!("{s}/deployments/settings");
    assert_eq!(c.get(&at).await.status, 404, "no settings yet");

    let r = c.put(&at, &settings()).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let put = r.json();
    assert_eq!(put["version"], 1, "{put}");
    assert_eq!(put["executorContext"]["executorImage"]["reference"], "pulumi/pulumi:latest");

    // A merge keeps what it does not name, replaces what it does, removes what it nulls.
    let patch = json!({
        "sourceContext": {"git": {"branch": "release"}},
        "operationContext": {"preRunCommands": ["make check"],
                             "environmentVariables": {"AWS_REGION": null, "STAGE": "dev"}}
    });
    let r = c.post(&at, &patch).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let got = c.get(&at).await;
    assert_eq!(got.status, 200, "{}", show(&got));
    let got = got.json();
    assert_eq!(got["version"], 2, "{got}");
    let git = &got["sourceContext"]["git"];
    assert_eq!((git["branch"].as_str(), git["repoDir"].as_str()), (Some("release"), Some("infra")));
    let op = &got["operationContext"];
    assert_eq!(op["preRunCommands"], json!(["make check"]));
    assert_eq!(op["options"]["skipInstallDependencies"], true);
    let vars = op["environmentVariables"].as_object().expect("variables");
    let names: Vec<&String> = vars.keys().collect();
    assert_eq!(names, ["API_KEY", "STAGE"], "{got}");
    assert_eq!(vars["API_KEY"]["secret"], "[secret]", "the secret survives the merge: {got}");

    // PUT replaces the whole: what it leaves out is gone.
    let r = c.put(&at, &json!({"sourceContext": {"git": {"repoUrl": "file:///srv/app"}}})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let got = c.get(&at).await.json();
    assert_eq!(got["version"], 3);
    assert!(got.get("operationContext").is_none(), "{got}");

    let r = c.delete(&at).await;
    assert_eq!((r.status.as_u16(), r.json()), (200, json!(true)));
    assert_eq!(c.get(&at).await.status, 404);
    assert_eq!(c.delete(&at).await.json(), json!(false), "nothing left to delete");
    // A merge with no settings creates them.
    let r = c.post(&at, &json!({"operationContext": {"preRunCommands": ["true"]}})).await;
    assert_eq!((r.status.as_u16(), &r.json()["version"]), (200, &json!(1)), "{}", show(&r));
    assert_eq!(
        c.get(&format!("/api/stacks/{org}/{PROJECT}/nope/deployments/settings")).await.status,
        404
    );
    srv.stop().await;
}

pub async fn settings_secrets_are_sealed_for_the_stack(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let dev = stack(&c, &org, "dev").await;
    let prod = stack(&c, &org, "prod").await;
    let at = format!("{dev}/deployments/settings");
    let r = c.put(&at, &settings()).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let got = c.get(&at).await;
    assert!(!String::from_utf8_lossy(&got.body).contains("hunter2"), "{}", show(&got));
    let ciphertext = got.json()["operationContext"]["environmentVariables"]["API_KEY"]
        ["ciphertext"]
        .as_str()
        .expect("a ciphertext")
        .to_string();
    // It is the stack's own service secret: the stack's decrypt opens it.
    let r = c.post(&format!("{dev}/decrypt"), &json!({"ciphertext": ciphertext})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let plain = base64_decode(r.json()["plaintext"].as_str().expect("plaintext"));
    assert_eq!(plain, b"hunter2");

    // What `…/settings/encrypt` answers goes into settings as a ciphertext.
    let r = c.post(&format!("{at}/encrypt"), &json!({"secret": "s3cret"})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let sealed = r.json();
    assert_eq!(sealed["secret"], "[secret]");
    let vars = json!({"operationContext": {"environmentVariables": {
        "TOKEN": {"ciphertext": sealed["ciphertext"]}}}});
    assert_eq!(c.post(&at, &vars).await.status, 200);
    let r = c.post(&format!("{at}/encrypt"), &json!({"secret": ""})).await;
    assert_eq!(r.status, 400, "empty: {}", show(&r));

    // Another stack's ciphertext is refused, and nothing changes.
    let before = c.get(&format!("{prod}/deployments/settings")).await.status;
    let r = c.put(&format!("{prod}/deployments/settings"), &vars).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert!(r.error_message(400).contains("not made for this stack"), "{}", show(&r));
    assert_eq!(c.get(&format!("{prod}/deployments/settings")).await.status, before);
    srv.stop().await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

pub async fn bad_settings_are_refused_and_change_nothing(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let at = format!("{}/deployments/settings", stack(&c, &org, "dev").await);
    assert_eq!(c.put(&at, &settings()).await.status, 200);
    let before = c.get(&at).await.json();
    for (bad, says) in [
        (json!({"gitHub": {"repository": "acme/app"}}), "GitHub app"),
        (json!({"operationContext": {"oidc": {"aws": {"roleArn": "x"}}}}), "OIDC"),
        (json!({"operationContext": {"environmentVariables": {"A-B": "x"}}}), "A-B"),
        (json!({"sourceContext": {"git": {"commit": "--exec=x"}}}), "cannot start with '-'"),
        (
            json!({"operationContext": {"environmentVariables": {"K": {"secret": "[secret]"}}}}),
            "shown",
        ),
        (json!({"operationContext": {"preRunCommands": "make"}}), "invalid deployment settings"),
    ] {
        for r in [c.put(&at, &bad).await, c.post(&at, &bad).await] {
            assert_eq!(r.status, 400, "{bad}: {}", show(&r));
            assert!(r.error_message(400).contains(says), "{bad}: {}", show(&r));
        }
    }
    let r = c.put(&at, &json!("not an object")).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert_eq!(c.get(&at).await.json(), before, "nothing changed");
    srv.stop().await;
}

pub async fn outsiders_cannot_read_or_change_settings(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let at = format!("{}/deployments/settings", stack(&c, &org, "dev").await);
    assert_eq!(c.put(&at, &settings()).await.status, 200);
    let eve = srv.other_user("eve-deploy").await;
    for r in [eve.get(&at).await, eve.put(&at, &settings()).await, eve.delete(&at).await] {
        assert!(matches!(r.status.as_u16(), 403 | 404), "an outsider: {}", show(&r));
    }
    assert_eq!(c.get(&at).await.json()["version"], 1);
    srv.stop().await;
}

/// Waits (polling; at most 2 minutes) until `done` holds of the run; the run.
async fn wait_for(c: &Client, stack: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let run = c.get(&format!("{stack}/deployments/{id}")).await.json();
        let log = c.get(&format!("{stack}/deployments/{id}/logs")).await.json();
        let both = json!({"run": run, "log": log});
        if done(&both) {
            return both;
        }
        assert!(std::time::Instant::now() < deadline, "{id} never got there: {both}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A run whose runner goes quiet (here: the clock moved past the staleness limit while a
/// pre-run command sleeps) is failed by `job-deployment-reaper`, and the stack's next run
/// starts.
pub async fn a_runner_that_stops_reporting_is_failed_by_the_reaper(target: Target) {
    use stackhouse::service::deploy::{dispatch, runs};
    let srv = TestServer::start(target).await;
    let _jobs = srv.deploying();
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    let (repo, url) = empty_repo();
    let settings = json!({
        "sourceContext": {"git": {"repoUrl": url}},
        "operationContext": {"preRunCommands": ["echo started; sleep 600"],
                             "options": {"skipInstallDependencies": true}}
    });
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings).await.status, 200);
    let r = c.post(&format!("{s}/deployments"), &json!({"operation": "update"})).await;
    let id = r.json()["id"].as_str().expect("an id").to_string();
    let running = |v: &Value| v["log"].to_string().contains("started");
    let seen = wait_for(&c, &s, &id, running).await;
    assert_eq!(seen["run"]["status"], "running", "{seen}");

    // Nothing is stale yet; past the limit, the run fails.
    let now = srv.app.clock.now();
    let early = dispatch::reap(&srv.app, now).await.expect("reap");
    assert!(early.failed.is_empty(), "{early:?}");
    // The runner (alive here) may report just after the clock jumps, which rightly keeps the
    // run: jump again until a pass finds it silent.
    let mut late = dispatch::ReapReport::default();
    for _ in 0..5 {
        srv.app.clock.advance(runs::STALE_SECONDS + 30);
        late = dispatch::reap(&srv.app, srv.app.clock.now()).await.expect("reap");
        if !late.failed.is_empty() {
            break;
        }
    }
    assert_eq!(late.failed, vec![id.clone()], "{late:?}");
    let run = c.get(&format!("{s}/deployments/{id}")).await.json();
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["message"].as_str().unwrap_or("").contains("stopped reporting"), "{run}");

    // The slot is free again: the next run starts and gets as far as its own command.
    let next = json!({"operation": "preview",
                      "operationContext": {"preRunCommands": ["echo second run"]}});
    let r = c.post(&format!("{s}/deployments"), &next).await;
    let second = r.json()["id"].as_str().expect("an id").to_string();
    let ended = |v: &Value| matches!(v["run"]["status"].as_str(), Some("succeeded" | "failed"));
    let done = wait_for(&c, &s, &second, ended).await;
    assert!(done["log"].to_string().contains("second run"), "{done}");
    let again = dispatch::reap(&srv.app, srv.app.clock.now()).await.expect("reap");
    assert!(again.failed.is_empty(), "an ended run is not failed twice: {again:?}");
    let _ = std::fs::remove_dir_all(&repo);
    srv.stop().await;
}

/// A repository with one commit (no program: the runs here only run pre-run commands); its
/// `file://` URL.
fn empty_repo() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("stackhouse-repo-{:016x}", rand::random::<u64>()));
    let repo = crate::git::repo_with(&dir, "main", &[("README.md", "no program\n")]);
    let url = format!("file://{}", repo.display());
    (repo, url)
}

/// Pausing a stack's (or its organization's) deployments holds its queued runs; resuming lets
/// them go at once. Only admins pause.
pub async fn paused_deployments_wait_until_resumed(target: Target) {
    let srv = TestServer::start(target).await;
    let _jobs = srv.deploying();
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    let (repo, url) = empty_repo();
    let settings = json!({
        "sourceContext": {"git": {"repoUrl": url}},
        "operationContext": {"preRunCommands": ["echo ran; exit 1"],
                             "options": {"skipInstallDependencies": true}}
    });
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings).await.status, 200);
    for (pause, resume) in [
        (format!("{s}/deployments/pause"), format!("{s}/deployments/resume")),
        (
            format!("/api/orgs/{org}/deployments/pause"),
            format!("/api/orgs/{org}/deployments/resume"),
        ),
    ] {
        assert_eq!(c.post(&pause, &json!({})).await.status, 204);
        let meta = c.get(&format!("{s}/deployments/metadata")).await.json();
        assert_eq!(meta["paused"], true, "{meta}");
        let r = c.post(&format!("{s}/deployments"), &json!({"operation": "update"})).await;
        let id = r.json()["id"].as_str().expect("an id").to_string();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let run = c.get(&format!("{s}/deployments/{id}")).await.json();
        assert_eq!(run["status"], "not-started", "paused: {run}");
        let listed = c.get(&format!("{s}/deployments")).await.json();
        assert_eq!(listed["deployments"][0]["paused"], true, "{listed}");
        assert_eq!(c.post(&resume, &json!({})).await.status, 204);
        let ended = |v: &Value| matches!(v["run"]["status"].as_str(), Some("failed" | "succeeded"));
        let done = wait_for(&c, &s, &id, ended).await;
        assert!(done["log"].to_string().contains("ran"), "it ran once resumed: {done}");
    }
    let meta = c.get(&format!("{s}/deployments/metadata")).await.json();
    assert_eq!(
        (meta["stackPaused"].as_bool(), meta["organizationPaused"].as_bool()),
        (Some(false), Some(false))
    );
    let eve = srv.other_user("eve-pause").await;
    let r = eve.post(&format!("/api/orgs/{org}/deployments/pause"), &json!({})).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{}", show(&r));
    let _ = std::fs::remove_dir_all(&repo);
    srv.stop().await;
}
