//! Pulumi Deployments over real HTTP: a stack's deployment settings as the REST API and the
//! Pulumi Service provider's `DeploymentSettings` resource use them (`PUT` replaces, `POST`
//! merges, `DELETE` answers whether there were any), secrets sealed for the stack; a run whose
//! runner is killed; runs as CodeBuild builds on AWS. (Runs with the real CLI: `cli_deploy.rs`.)

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
            a_killed_runner_is_failed_by_the_reaper,
            paused_deployments_wait_until_resumed,
            schedules_are_defined_read_paused_and_deleted,
            a_cron_schedule_makes_each_missed_window_into_one_run,
            a_ttl_schedule_fires_once_and_removes_itself,
            a_queued_run_follows_its_stack_when_renamed,
            a_runs_life_reaches_webhooks_and_the_audit_log
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

/// The `stackhouse-runner` binary beside this test binary's directory (`target/<profile>`):
/// cargo builds it for the workspace's tests (`local-emulator` has integration tests);
/// `.ci/test` builds it first.
fn runner_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("this test binary");
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let bin = profile.join("stackhouse-runner");
    assert!(
        bin.is_file(),
        "{} is missing: cargo build -p local-emulator --bin stackhouse-runner",
        bin.display()
    );
    bin
}

/// A runner killed mid-run (a real `stackhouse-runner` process and the command it started,
/// killed with SIGKILL) stops reporting: `job-deployment-reaper` fails its run once the clock
/// is past the staleness limit, and the stack's next run starts.
pub async fn a_killed_runner_is_failed_by_the_reaper(target: Target) {
    use local_emulator::launcher::{ProcessLauncher, Processes};
    use stackhouse::service::deploy::{dispatch, runs};
    let srv = TestServer::start(target).await;
    let runners = std::sync::Arc::new(Processes::new(
        runner_binary(),
        &[],
        &srv.base,
        std::env::temp_dir().join(format!("stackhouse-runs-{:016x}", rand::random::<u64>())),
    ));
    srv.app.launcher.set(std::sync::Arc::new(ProcessLauncher(runners.clone())));
    let _jobs = srv.deploying();
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    let repo = runs_commands(&c, &s, "echo started; sleep 600").await;
    let r = c.post(&format!("{s}/deployments"), &json!({"operation": "update"})).await;
    let id = r.json()["id"].as_str().expect("an id").to_string();
    let running = |v: &Value| v["log"].to_string().contains("started");
    let seen = wait_for(&c, &s, &id, running).await;
    assert_eq!(seen["run"]["status"], "running", "{seen}");

    // Nothing is stale yet.
    let early = dispatch::reap(&srv.app, srv.app.clock.now()).await.expect("reap");
    assert!(early.failed.is_empty(), "{early:?}");
    // Kill the runner and its command (its process group), as an OOM kill or a lost host would.
    let pid = runners.pid_of(&id).expect("a live runner process");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -KILL -{pid}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while runners.pid_of(&id).is_some() {
        assert!(std::time::Instant::now() < deadline, "the runner outlived SIGKILL");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let run = c.get(&format!("{s}/deployments/{id}")).await.json();
    assert_eq!(run["status"], "running", "nobody knows yet: {run}");

    // Past the limit the run is failed, once.
    srv.app.clock.advance(runs::STALE_SECONDS + 1);
    let late = dispatch::reap(&srv.app, srv.app.clock.now()).await.expect("reap");
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

/// On AWS each run is a build of the runner's CodeBuild project (moto's CodeBuild here, which
/// records builds but runs none): starting a run starts one build and leaves the run accepted,
/// waiting for its runner; a project that does not exist fails the run saying why; a function
/// that starts runners without a project configured does not start.
pub async fn runs_start_codebuild_builds(target: Target) {
    use stackhouse::adapters::aws::{launcher_for, AwsConfig};
    use stackhouse::ports::Needs;
    use stackhouse::service::deploy::dispatch;
    let srv = TestServer::start(target).await;
    let cfg = srv.aws_config().expect("the AWS backend").clone();
    let project = format!("{}-runner", cfg.table);
    let codebuild = codebuild_client(&cfg);
    codebuild
        .create_project()
        .name(&project)
        .source(
            aws_sdk_codebuild::types::ProjectSource::builder()
                .r#type(aws_sdk_codebuild::types::SourceType::NoSource)
                // moto wants a location even without a source (AWS does not).
                .location("none")
                .buildspec("version: 0.2")
                .build()
                .expect("a source"),
        )
        .artifacts(
            aws_sdk_codebuild::types::ProjectArtifacts::builder()
                .r#type(aws_sdk_codebuild::types::ArtifactsType::NoArtifacts)
                .build()
                .expect("artifacts"),
        )
        .environment(
            aws_sdk_codebuild::types::ProjectEnvironment::builder()
                .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
                .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                .build()
                .expect("an environment"),
        )
        .service_role("arn:aws:iam::123456789012:role/runner")
        .send()
        .await
        .expect("create the runner's project");
    let launching = Needs::NOTHING.launching();
    let unset =
        launcher_for(launching, &AwsConfig { runner_project: String::new(), ..cfg.clone() });
    let refused = unset.await.err().expect("no project, no launcher").to_string();
    assert!(refused.contains("STACKHOUSE_RUNNER_PROJECT"), "{refused}");
    let with = |project: &str| {
        launcher_for(launching, &AwsConfig { runner_project: project.to_string(), ..cfg.clone() })
    };
    srv.app.launcher.set(with(&project).await.expect("a launcher").expect("it launches"));

    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings()).await.status, 200);
    let r = c.post(&format!("{s}/deployments"), &json!({"operation": "update"})).await;
    let id = r.json()["id"].as_str().expect("an id").to_string();
    dispatch::start(&srv.app, &id).await.expect("start");
    // A redelivered message starts nothing more.
    dispatch::start(&srv.app, &id).await.expect("start again");
    let run = c.get(&format!("{s}/deployments/{id}")).await.json();
    assert_eq!(run["status"], "accepted", "waiting for its runner: {run}");
    let builds = codebuild
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .expect("list builds");
    assert_eq!(builds.ids().len(), 1, "{builds:?}");

    // A project that is not there: the run fails, naming it.
    srv.app.launcher.set(with("no-such-project").await.expect("a launcher").expect("launches"));
    let s2 = stack(&c, &org, "other").await;
    assert_eq!(c.put(&format!("{s2}/deployments/settings"), &settings()).await.status, 200);
    let r = c.post(&format!("{s2}/deployments"), &json!({"operation": "update"})).await;
    let failing = r.json()["id"].as_str().expect("an id").to_string();
    dispatch::start(&srv.app, &failing).await.expect("start");
    let run = c.get(&format!("{s2}/deployments/{failing}")).await.json();
    assert_eq!(run["status"], "failed", "{run}");
    let message = run["message"].as_str().unwrap_or_default();
    assert!(message.contains("the runner did not start"), "{run}");
    assert!(message.contains("no-such-project"), "{run}");
    srv.stop().await;
}

/// A CodeBuild client for the moto server behind `cfg`.
fn codebuild_client(cfg: &stackhouse::adapters::aws::AwsConfig) -> aws_sdk_codebuild::Client {
    let endpoint = cfg.endpoint_url.clone().expect("a moto endpoint");
    let creds = aws_sdk_codebuild::config::Credentials::new("test", "test", None, None, "t");
    aws_sdk_codebuild::Client::from_conf(
        aws_sdk_codebuild::Config::builder()
            .behavior_version(aws_sdk_codebuild::config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_sdk_codebuild::config::Region::new(
                cfg.region.clone().unwrap_or_else(|| "us-east-1".into()),
            ))
            .endpoint_url(endpoint)
            .build(),
    )
}

/// Gives stack `s` deployment settings whose runs clone an empty repository and run only the
/// shell `command` (a repository with one commit and no program); that repository, for the
/// test to remove.
async fn runs_commands(c: &crate::server::Client, s: &str, command: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stackhouse-repo-{:016x}", rand::random::<u64>()));
    let repo = crate::git::repo_with(&dir, "main", &[("README.md", "no program\n")]);
    let url = format!("file://{}", repo.display());
    let settings = json!({
        "sourceContext": {"git": {"repoUrl": url}},
        "operationContext": {"preRunCommands": [command],
                             "options": {"skipInstallDependencies": true}}
    });
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings).await.status, 200);
    repo
}

/// Pausing a stack's (or its organization's) deployments holds its queued runs; resuming lets
/// them go at once. Only admins pause.
pub async fn paused_deployments_wait_until_resumed(target: Target) {
    let srv = TestServer::start(target).await;
    let _jobs = srv.deploying();
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    let repo = runs_commands(&c, &s, "echo ran; exit 1").await;
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

/// The schedules path of stack path `s`.
fn schedules_at(s: &str) -> String {
    format!("{s}/deployments/schedules")
}

/// RFC 3339 of the server clock's now plus `secs`.
fn from_now(srv: &TestServer, secs: i64) -> String {
    stackhouse::service::environments::rfc3339(srv.app.clock.now() + secs)
}

/// Schedules as Pulumi Cloud's clients use them: raw ones (cron or once), drift and TTL ones
/// made under their own routes, all read, listed, paused, resumed and deleted through the raw
/// routes; bad definitions are 400s that store nothing; a stack without deployment settings
/// gets none.
pub async fn schedules_are_defined_read_paused_and_deleted(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    let at = schedules_at(&s);
    let raw = json!({"scheduleCron": "0 * * * *", "request": {"operation": "update"}});
    let r = c.post(&at, &raw).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert!(show(&r).contains("deployment settings"), "{}", show(&r));
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings()).await.status, 200);
    for bad in [
        json!({"request": {"operation": "update"}}),
        json!({"scheduleCron": "61 * * * *", "request": {"operation": "update"}}),
        json!({"scheduleCron": "CRON_TZ=Nowhere/Town 0 * * * *", "request": {"operation": "update"}}),
        json!({"scheduleCron": "0 * * * *", "request": {"operation": "explode"}}),
        json!({"scheduleCron": "0 * * * *", "scheduleOnce": from_now(&srv, 3600),
               "request": {"operation": "update"}}),
        json!({"scheduleOnce": "2001-01-01T00:00:00Z", "request": {"operation": "update"}}),
        json!({"scheduleCron": "0 * * * *", "request": {"operation": "update", "sourceContext": 7}}),
    ] {
        let r = c.post(&at, &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", show(&r));
    }
    let r = c.post(&format!("{s}/deployments/ttl/schedules"), &json!({"timestamp": "soon"})).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert_eq!(c.get(&at).await.json(), json!({"schedules": []}), "nothing was stored");
    assert_eq!(c.get(&format!("{s}/deployments/metadata")).await.json()["hasSchedules"], false);

    let r = c.post(&at, &raw).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let cron = r.json();
    let id = cron["id"].as_str().expect("an id").to_string();
    assert_eq!(
        (cron["kind"].as_str(), cron["paused"].as_bool()),
        (Some("deployment"), Some(false))
    );
    assert_eq!(cron["lastExecuted"], Value::Null, "{cron}");
    assert_eq!(cron["definition"]["request"], raw["request"], "{cron}");
    let next = cron["nextExecution"].as_str().unwrap_or_default();
    assert!(next.len() == 23 && next.ends_with(":00:00.000"), "on the hour, in UTC: {cron}");

    let r = c
        .post(
            &format!("{s}/deployments/drift/schedules"),
            &json!({"scheduleCron": "0 */4 * * *", "autoRemediate": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let drift = r.json();
    assert_eq!(drift["definition"]["request"]["operation"], "detect-drift", "{drift}");
    let options = &drift["definition"]["request"]["operationContext"]["options"];
    assert_eq!(options["remediateIfDriftDetected"], true, "{drift}");
    let ttl_at = from_now(&srv, 86_400);
    let r = c
        .post(
            &format!("{s}/deployments/ttl/schedules"),
            &json!({"timestamp": ttl_at, "deleteAfterDestroy": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let ttl = r.json();
    let ttl_id = ttl["id"].as_str().expect("an id").to_string();
    assert_eq!(ttl["scheduleOnce"], ttl["nextExecution"], "{ttl}");
    assert!(ttl.get("scheduleCron").is_none(), "{ttl}");
    assert_eq!(ttl["definition"]["request"]["operation"], "destroy", "{ttl}");
    let options = &ttl["definition"]["request"]["operationContext"]["options"];
    assert_eq!(options["deleteAfterDestroy"], true, "{ttl}");

    let listed = c.get(&at).await.json();
    let ids: Vec<&str> = listed["schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3, "{listed}");
    assert_eq!((ids[0], ids[2]), (id.as_str(), ttl_id.as_str()), "oldest first: {listed}");
    assert_eq!(c.get(&format!("{s}/deployments/metadata")).await.json()["hasSchedules"], true);

    // An update replaces the definition.
    let changed = json!({"scheduleCron": "30 6 * * 1-5", "request": {"operation": "preview"}});
    let r = c.post(&format!("{at}/{id}"), &changed).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let got = c.get(&format!("{at}/{id}")).await.json();
    assert_eq!(got["scheduleCron"], "30 6 * * 1-5", "{got}");
    assert_eq!(got["definition"]["request"]["operation"], "preview", "{got}");
    assert!(got["nextExecution"].as_str().unwrap_or_default().ends_with("06:30:00.000"), "{got}");

    for (action, paused) in [("pause", true), ("resume", false)] {
        let r = c.post(&format!("{at}/{id}/{action}"), &json!({})).await;
        assert_eq!(r.status, 204, "{action}: {}", show(&r));
        assert_eq!(c.get(&format!("{at}/{id}")).await.json()["paused"], paused, "{action}");
    }
    assert_eq!(
        c.get(&format!("{at}/{id}/history")).await.json(),
        json!({"scheduleHistoryEvents": []})
    );

    // Another stack does not see it; an outsider sees nothing.
    let other = stack(&c, &org, "other").await;
    assert_eq!(c.get(&format!("{}/{id}", schedules_at(&other))).await.status, 404);
    let eve = srv.other_user("eve-schedules").await;
    assert!(matches!(eve.get(&at).await.status.as_u16(), 403 | 404));
    let r = eve.post(&at, &raw).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{}", show(&r));

    // Deleting answers 204, also for one that is gone.
    assert_eq!(c.delete(&format!("{at}/{ttl_id}")).await.status, 204);
    assert_eq!(c.delete(&format!("{at}/{ttl_id}")).await.status, 204);
    assert_eq!(c.get(&format!("{at}/{ttl_id}")).await.status, 404);
    assert_eq!(c.get(&at).await.json()["schedules"].as_array().map(Vec::len), Some(2));
    srv.stop().await;
}

/// A cron schedule whose scheduler was down catches up: each missed window becomes exactly one
/// run, oldest first, at most the per-pass cap at a time, also with two schedulers racing; a
/// window that can make no run is recorded as failed; a paused schedule fires nothing and,
/// resumed, does not make up what it missed.
pub async fn a_cron_schedule_makes_each_missed_window_into_one_run(target: Target) {
    use stackhouse::service::deploy::scheduler::tick;
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings()).await.status, 200);
    let at = schedules_at(&s);
    let def = json!({"scheduleCron": "*/10 * * * *", "request": {"operation": "preview"}});
    let r = c.post(&at, &def).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let id = r.json()["id"].as_str().expect("an id").to_string();
    let created = srv.app.clock.now();
    let none = tick(&srv.app, created, 4).await.expect("tick");
    assert!(none.fired.is_empty(), "nothing due yet: {none:?}");

    // An hour later: six windows, ten minutes apart, are due.
    srv.app.clock.advance(3600);
    let now = srv.app.clock.now();
    let expected: Vec<i64> = ((created + 1)..=now).filter(|t| t % 600 == 0).collect();
    assert_eq!(expected.len(), 6);
    let first = tick(&srv.app, now, 4).await.expect("tick");
    let windows: Vec<i64> = first.fired.iter().map(|f| f.1).collect();
    assert_eq!(windows, expected[..4], "the oldest four: {first:?}");
    assert_eq!(first.behind, 1, "{first:?}");
    // Two schedulers race for the rest: each window still makes one run.
    let (a, b) = tokio::join!(tick(&srv.app, now, 4), tick(&srv.app, now, 4));
    let (a, b) = (a.expect("tick"), b.expect("tick"));
    let mut rest: Vec<i64> = a.fired.iter().chain(&b.fired).map(|f| f.1).collect();
    rest.sort();
    assert_eq!(rest, expected[4..], "{a:?} {b:?}");
    assert!(tick(&srv.app, now, 4).await.expect("tick").fired.is_empty());

    let runs = c.get(&format!("{s}/deployments?pageSize=100")).await.json();
    assert_eq!(runs["total"], 6, "{runs}");
    assert!(runs["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|d| d["pulumiOperation"] == "preview"));
    let history = c.get(&format!("{at}/{id}/history")).await.json();
    let events = history["scheduleHistoryEvents"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 6, "{history}");
    assert!(events
        .iter()
        .all(|e| e["result"] == "succeeded" && e["scheduledActionID"] == id.as_str()));
    let mut made: Vec<&str> = events.iter().filter_map(|e| e["deploymentId"].as_str()).collect();
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 6, "a run per window: {history}");
    let last = stackhouse::service::deploy::cron::format_moment(expected[5]);
    assert_eq!(events[0]["executed"], last.as_str(), "newest first: {history}");
    let got = c.get(&format!("{at}/{id}")).await.json();
    assert_eq!(got["lastExecuted"], last.as_str(), "{got}");

    // Without settings a window makes no run; it is recorded as failed, and passed.
    assert_eq!(c.delete(&format!("{s}/deployments/settings")).await.status, 200);
    srv.app.clock.advance(600);
    let failed = tick(&srv.app, srv.app.clock.now(), 4).await.expect("tick");
    assert_eq!((failed.fired.len(), failed.failed.len()), (0, 1), "{failed:?}");
    let history = c.get(&format!("{at}/{id}/history")).await.json();
    assert_eq!(history["scheduleHistoryEvents"][0]["result"], "failed", "{history}");
    assert!(history["scheduleHistoryEvents"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("no source"));

    // Paused, it fires nothing; resumed, it goes on from now.
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings()).await.status, 200);
    assert_eq!(c.post(&format!("{at}/{id}/pause"), &json!({})).await.status, 204);
    srv.app.clock.advance(1800);
    assert!(tick(&srv.app, srv.app.clock.now(), 4).await.expect("tick").fired.is_empty());
    assert_eq!(c.post(&format!("{at}/{id}/resume"), &json!({})).await.status, 204);
    assert!(tick(&srv.app, srv.app.clock.now(), 4).await.expect("tick").fired.is_empty());
    srv.app.clock.advance(600);
    assert_eq!(tick(&srv.app, srv.app.clock.now(), 4).await.expect("tick").fired.len(), 1);
    srv.stop().await;
}

/// A TTL schedule fires once, on time (also after its stack was renamed), as a `destroy` run
/// that removes the stack afterwards, and removes itself (as Pulumi Cloud's one-time schedules
/// do).
pub async fn a_ttl_schedule_fires_once_and_removes_itself(target: Target) {
    use stackhouse::service::deploy::scheduler::tick;
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    assert_eq!(c.put(&format!("{s}/deployments/settings"), &settings()).await.status, 200);
    let body = json!({"timestamp": from_now(&srv, 7200), "deleteAfterDestroy": true});
    let r = c.post(&format!("{s}/deployments/ttl/schedules"), &body).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let id = r.json()["id"].as_str().expect("an id").to_string();
    srv.app.clock.advance(3600);
    assert!(
        tick(&srv.app, srv.app.clock.now(), 5).await.expect("tick").fired.is_empty(),
        "not yet"
    );
    // The schedule moves with its stack when it is renamed.
    let body = json!({"newName": "renamed", "newProject": PROJECT});
    let r = c.post(&format!("{s}/rename"), &body).await;
    assert!(r.status.is_success(), "{}", show(&r));
    let s = format!("/api/stacks/{org}/{PROJECT}/renamed");
    assert_eq!(c.get(&format!("{}/{id}", schedules_at(&s))).await.status, 200);
    srv.app.clock.advance(3601);
    let fired = tick(&srv.app, srv.app.clock.now(), 5).await.expect("tick");
    assert_eq!(fired.fired.len(), 1, "{fired:?}");
    let run_id = &fired.fired[0].2;
    let run = c.get(&format!("{s}/deployments/{run_id}")).await.json();
    assert_eq!(run["pulumiOperation"], "destroy", "{run}");
    assert_eq!(c.get(&format!("{}/{id}", schedules_at(&s))).await.status, 404, "it removed itself");
    assert_eq!(c.get(&schedules_at(&s)).await.json(), json!({"schedules": []}));
    srv.app.clock.advance(3600);
    assert!(tick(&srv.app, srv.app.clock.now(), 5).await.expect("tick").fired.is_empty(), "once");
    srv.stop().await;
}

/// A run queued (its stack's deployments paused) when its stack is renamed runs against the
/// new name; while a run is running the rename is refused (409), as while an update runs.
pub async fn a_queued_run_follows_its_stack_when_renamed(target: Target) {
    let srv = TestServer::start(target).await;
    let _jobs = srv.deploying();
    let (c, org) = (srv.client(), srv.user.clone());
    let s = stack(&c, &org, "dev").await;
    let repo = runs_commands(&c, &s, "echo stack=$PULUMI_CI_STACK; exit 1").await;
    assert_eq!(c.post(&format!("{s}/deployments/pause"), &json!({})).await.status, 204);
    let r = c.post(&format!("{s}/deployments"), &json!({"operation": "update"})).await;
    let id = r.json()["id"].as_str().expect("an id").to_string();
    let body = json!({"newName": "renamed", "newProject": PROJECT});
    let r = c.post(&format!("{s}/rename"), &body).await;
    assert!(r.status.is_success(), "{}", show(&r));
    let s = format!("/api/stacks/{org}/{PROJECT}/renamed");
    assert_eq!(c.post(&format!("{s}/deployments/resume"), &json!({})).await.status, 204);
    let ended = |v: &Value| matches!(v["run"]["status"].as_str(), Some("succeeded" | "failed"));
    let done = wait_for(&c, &s, &id, ended).await;
    let log = done["log"].to_string();
    assert!(log.contains("stack=renamed"), "the runner got the new name: {done}");

    // A running run holds the stack's name.
    let sleepy = json!({"operation": "update",
                        "operationContext": {"preRunCommands": ["echo started; sleep 30"]}});
    let r = c.post(&format!("{s}/deployments"), &sleepy).await;
    let running = r.json()["id"].as_str().expect("an id").to_string();
    wait_for(&c, &s, &running, |v| v["log"].to_string().contains("started")).await;
    let r =
        c.post(&format!("{s}/rename"), &json!({"newName": "again", "newProject": PROJECT})).await;
    assert_eq!(r.status, 409, "{}", show(&r));
    assert!(show(&r).contains(&running), "{}", show(&r));
    assert_eq!(c.get(&s).await.status, 200, "the stack kept its name");
    let cancel = c.post(&format!("{s}/deployments/{running}/cancel"), &json!({})).await;
    assert!(cancel.status.is_success(), "{}", show(&cancel));
    wait_for(&c, &s, &running, ended).await;
    let r =
        c.post(&format!("{s}/rename"), &json!({"newName": "again", "newProject": PROJECT})).await;
    assert!(r.status.is_success(), "once it ended: {}", show(&r));
    let _ = std::fs::remove_dir_all(&repo);
    srv.stop().await;
}

/// A run's life reaches the hooks that filter on deployment events (queued, started, and how
/// it ended, with Pulumi's `deployment` kind) and the audit log (started, ended with the
/// reason, and a run a schedule made).
pub async fn a_runs_life_reaches_webhooks_and_the_audit_log(target: Target) {
    use stackhouse::jobs::consumer::{poll_once, Backoff};
    use stackhouse::jobs::table::JOB_WEBHOOK_DELIVER;
    let settings = stackhouse::app::Settings { webhook_allow_loopback: true, ..Default::default() };
    let srv = TestServer::start_with(target, settings).await;
    let _jobs = srv.deploying();
    let rx = crate::webhooks::Receiver::start(vec![], std::time::Duration::ZERO).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let hook = json!({"name": "runs", "displayName": "Runs", "payloadUrl": rx.url, "format": "raw",
                      "filters": ["deployment_queued", "deployment_started", "deployment_failed"]});
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &hook).await.status, 200);
    let s = stack(&c, &org, "dev").await;
    let repo = runs_commands(&c, &s, "echo about to fail; exit 4").await;
    let r = c.post(&format!("{s}/deployments"), &json!({"operation": "update"})).await;
    let id = r.json()["id"].as_str().expect("an id").to_string();
    let ended = |v: &Value| v["run"]["status"] == "failed";
    wait_for(&c, &s, &id, ended).await;

    // Deliver what was queued (the webhook job, run by hand here).
    let now = Backoff { base: std::time::Duration::ZERO, max: std::time::Duration::ZERO };
    while poll_once(&srv.app, &JOB_WEBHOOK_DELIVER, &now).await.expect("poll").received > 0 {}
    let mut got: Vec<(String, Value)> = rx
        .received()
        .iter()
        .map(|r| {
            let kind = r.headers.get("pulumi-webhook-kind").cloned().unwrap_or_default();
            (kind, serde_json::from_slice(&r.body).expect("JSON"))
        })
        .collect();
    got.sort_by_key(|(_, v)| {
        ["not-started", "running", "failed"].iter().position(|s| v["status"] == *s)
    });
    let statuses: Vec<&str> = got.iter().filter_map(|(_, v)| v["status"].as_str()).collect();
    assert_eq!(statuses, ["not-started", "running", "failed"], "{got:?}");
    for (kind, v) in &got {
        assert_eq!(kind, "deployment", "{v}");
        assert_eq!(
            (v["deploymentId"].as_str(), v["stackName"].as_str()),
            (Some(id.as_str()), Some("dev"))
        );
        assert_eq!(v["pulumiOperation"], "update", "{v}");
    }
    assert!(got[2].1["message"].as_str().unwrap_or("").contains("exit status: 4"), "{got:?}");

    let audit = c.get(&format!("/api/orgs/{org}/auditlogs")).await.json();
    let events: Vec<(String, String)> = audit["auditLogEvents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").into(),
                e["description"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let started = events.iter().find(|(e, _)| e == "deployment-started");
    assert!(started.is_some_and(|(_, d)| d.contains(&id)), "{events:?}");
    let failed = events.iter().find(|(e, _)| e == "deployment-failed");
    assert!(failed.is_some_and(|(_, d)| d.contains("exit status: 4")), "{events:?}");
    let _ = std::fs::remove_dir_all(&repo);
    srv.stop().await;
}
