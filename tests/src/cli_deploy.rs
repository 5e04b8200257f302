//! The deployment runner (`local_emulator::runner`) with the real Pulumi CLI and a real git
//! repository: the program cloned from a `file://` URL at a branch, pre-run commands, then
//! `pulumi up` against the emulator, every line streamed to the run's log; a failing pre-run
//! command ends the run with its output and changes nothing.

use std::collections::BTreeMap;

use local_emulator::runner::{self, Control, LogLine, Sink};
use stackhouse::service::deploy::spec::{GitCheckout, RunSpec};
use stackhouse::service::deploy::Operation;

use crate::git::git;
use crate::pulumi::{bin_dir, Program, Pulumi};
use crate::server::{Target, TestServer};

/// Keeps every line, as the run's log would.
#[derive(Default)]
struct Collect(Vec<LogLine>);

#[async_trait::async_trait]
impl Sink for Collect {
    async fn write(&mut self, lines: Vec<LogLine>) -> Control {
        self.0.extend(lines);
        Control::Continue
    }
}

impl Collect {
    fn text(&self) -> String {
        self.0.iter().map(|l| format!("[{}] {}\n", l.header, l.line)).collect()
    }
}

pub async fn runner_deploys_from_git_with_the_real_cli(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    // The program lives in `infra/` of a repository whose `release` branch has it.
    let repo = p.items_dir().with_file_name("repo");
    let project = p.project("remote", &Program::items(2));
    std::fs::create_dir_all(&repo).expect("repo dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "main has no program\n").expect("readme");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "start"]);
    git(&repo, &["checkout", "-q", "-b", "release"]);
    std::fs::create_dir_all(repo.join("infra")).expect("infra dir");
    std::fs::copy(project.dir.join("Pulumi.yaml"), repo.join("infra/Pulumi.yaml")).expect("copy");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "program"]);
    p.run(&project.dir, &["stack", "init", &p.fq("remote", "dev")]).await.ok();

    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
    let spec = |commands: &[&str]| RunSpec {
        id: "run-1".into(),
        version: 1,
        backend_url: server.base.clone(),
        access_token: server.token.clone(),
        org: p.org.clone(),
        project: "remote".into(),
        stack: "dev".into(),
        operation: Operation::Update,
        source: GitCheckout {
            url: format!("file://{}", repo.display()),
            branch: Some("release".into()),
            dir: Some("infra".into()),
            ..GitCheckout::default()
        },
        environment: BTreeMap::from([
            ("PATH".to_string(), path.clone()),
            ("STACKHOUSE_TEST_ITEMS_DIR".to_string(), p.items_dir().display().to_string()),
            ("GREETING".to_string(), "hello from the settings".to_string()),
        ]),
        pre_run_commands: commands.iter().map(|c| c.to_string()).collect(),
        shell: None,
        // `pulumi install` would look for the test provider on GitHub.
        skip_install: true,
        delete_after_destroy: false,
        secrets: Vec::new(),
    };

    // A failing pre-run command ends the run before Pulumi runs: its output is in the log.
    let work = p.items_dir().with_file_name("work-1");
    let mut log = Collect::default();
    let failed = runner::run(&spec(&["echo broken >&2; exit 3"]), &work, &mut log).await;
    assert!(!failed.succeeded, "{}", log.text());
    assert!(failed.message.contains("exit status: 3"), "{failed:?}");
    assert!(log.text().contains("[Pre-run] broken"), "{}", log.text());
    assert!(!log.text().contains("[Pulumi]"), "{}", log.text());
    assert_eq!(p.item_count(), 0, "nothing deployed");

    let work = p.items_dir().with_file_name("work-2");
    let mut log = Collect::default();
    let done =
        runner::run(&spec(&["echo \"$GREETING in $(basename \"$PWD\")\""]), &work, &mut log).await;
    let text = log.text();
    assert!(done.succeeded, "{done:?}\n{text}");
    assert!(text.contains("[Pre-run] hello from the settings in infra"), "{text}");
    assert!(text.contains("[Pulumi] $ pulumi up --yes --skip-preview"), "{text}");
    assert!(text.contains("+ 3 created"), "the stack and its two items: {text}");
    assert_eq!(p.item_count(), 2, "{text}");
    let history = server
        .client()
        .get(&format!("/api/stacks/{}/remote/dev/updates?pageSize=10&page=1", p.org))
        .await;
    let updates = history.json()["updates"].as_array().cloned().unwrap_or_default();
    assert_eq!(updates.len(), 1, "the run's update is the stack's history: {history:?}");
    assert_eq!(updates[0]["result"], "succeeded", "{history:?}");
    // The CLI names the CI system the runner told it of.
    let env = &updates[0]["environment"];
    assert_eq!(env["ci.system"], "Stackhouse Deployments", "{env}");
    server.stop().await;
}

/// A repository with the items program in `infra/` on branch `release`; its `file://` URL.
fn program_repo(p: &Pulumi, items: usize) -> String {
    let dir = p.items_dir().with_file_name(format!("repo-{:08x}", rand::random::<u32>()));
    let project = p.project("remote", &Program::items(items));
    let yaml = std::fs::read_to_string(project.dir.join("Pulumi.yaml")).expect("the program");
    let repo = crate::git::repo_with(&dir, "release", &[("infra/Pulumi.yaml", &yaml)]);
    format!("file://{}", repo.display())
}

/// Waits (polling; at most 3 minutes) until the run has ended; its last state.
async fn ended(c: &crate::server::Client, stack: &str, id: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let got = c.get(&format!("{stack}/deployments/{id}")).await;
        assert_eq!(got.status, 200, "{got:?}");
        let run = got.json();
        if matches!(run["status"].as_str(), Some("succeeded" | "failed")) {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "deployment {id} never ended: {run}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The whole log of a run, page by page, as `header: line` lines.
async fn whole_log(c: &crate::server::Client, stack: &str, id: &str) -> String {
    let mut out = String::new();
    let mut token = String::new();
    for _ in 0..1000 {
        let page = c.get(&format!("{stack}/deployments/{id}/logs?continuationToken={token}")).await;
        assert_eq!(page.status, 200, "{page:?}");
        let page = page.json();
        assert_eq!(page["__type"], "DeploymentLogs");
        for l in page["lines"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{}: {}\n",
                l["header"].as_str().unwrap_or(""),
                l["line"].as_str().unwrap_or("")
            ));
        }
        match page["nextToken"].as_str() {
            Some(t) => token = t.to_string(),
            None => return out,
        }
    }
    panic!("the log of {id} never ended")
}

pub async fn deployments_run_from_settings_with_the_real_cli(target: Target) {
    let server = TestServer::start(target).await;
    let _jobs = server.deploying();
    let p = Pulumi::login(&server).await;
    let c = server.client();
    let url = program_repo(&p, 2);
    let project = p.project("remote", &Program::items(2));
    p.run(&project.dir, &["stack", "init", &p.fq("remote", "dev")]).await.ok();
    p.run(&project.dir, &["stack", "init", &p.fq("remote", "other")]).await.ok();
    let stack = format!("/api/stacks/{}/remote/dev", p.org);
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
    // What the run's token reaches: its stack, not another, nor the user's stack list.
    let probe = format!(
        "for at in remote/dev remote/other; do echo \"$at: $(curl -s -o /dev/null -w '%{{http_code}}' \
         -H \"Authorization: token $PULUMI_ACCESS_TOKEN\" $PULUMI_BACKEND_URL/api/stacks/{}/$at)\"; done; \
         echo \"user stacks: $(curl -s -o /dev/null -w '%{{http_code}}' -H \"Authorization: token \
         $PULUMI_ACCESS_TOKEN\" $PULUMI_BACKEND_URL/api/user/stacks)\"; \
         echo \"org events: $(curl -s -o /dev/null -w '%{{http_code}}' -H \"Authorization: token \
         $PULUMI_ACCESS_TOKEN\" $PULUMI_BACKEND_URL/api/orgs/{}/events)\"",
        p.org, p.org
    );
    let settings = serde_json::json!({
        "sourceContext": {"git": {"repoUrl": url, "branch": "release", "repoDir": "infra"}},
        "operationContext": {
            "environmentVariables": {
                "PATH": path,
                "STACKHOUSE_TEST_ITEMS_DIR": p.items_dir().display().to_string(),
                "GREETING": {"secret": "hello"}
            },
            "preRunCommands": [
                "echo \"greeting has $(printf %s \"$GREETING\" | wc -c) characters\"",
                "echo \"greeting: $GREETING; token: $PULUMI_ACCESS_TOKEN\"",
                probe
            ],
            // `pulumi install` would look for the test provider on GitHub.
            "options": {"skipInstallDependencies": true}
        }
    });
    assert_eq!(c.put(&format!("{stack}/deployments/settings"), &settings).await.status, 200);

    let r =
        c.post(&format!("{stack}/deployments"), &serde_json::json!({"operation": "update"})).await;
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json()["id"].as_str().expect("an id").to_string();
    let run = ended(&c, &stack, &id).await;
    let log = whole_log(&c, &stack, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert!(
        log.contains("Pre-run: greeting has 5 characters"),
        "the secret reached the run: {log}"
    );
    assert!(log.contains("Pre-run: greeting: [secret]; token: [secret]"), "masked: {log}");
    assert!(log.contains("Pre-run: remote/dev: 200"), "{log}");
    assert!(log.contains("Pre-run: remote/other: 404"), "{log}");
    assert!(log.contains("Pre-run: user stacks: 403"), "{log}");
    assert!(log.contains("Pre-run: org events: 403"), "{log}");
    assert!(log.contains("Pulumi: Resources:") && log.contains("+ 3 created"), "{log}");
    assert_eq!(p.item_count(), 2, "{log}");
    let history = c.get(&format!("{stack}/updates?pageSize=10&page=1")).await.json();
    assert_eq!(history["updates"][0]["environment"]["ci.system"], "Stackhouse Deployments");
    let made = c.get(&format!("{stack}/deployments/{id}/updates")).await.json();
    assert_eq!(made.as_array().map(Vec::len), Some(1), "the run made one update: {made}");
    assert_eq!(made[0]["info"]["kind"], "update", "{made}");
    assert_eq!(made[0]["version"], 1, "{made}");
    let status = c.get(&format!("/api/deployments/{id}/status")).await;
    assert_eq!(status.json(), serde_json::json!("succeeded"));

    // Two runs at once: the second waits for the first. A third, cancelled while it waits,
    // never runs.
    let post = |op: &str| {
        let body = serde_json::json!({"operation": op});
        let c = &c;
        let at = format!("{stack}/deployments");
        async move { c.post(&at, &body).await.json()["id"].as_str().expect("an id").to_string() }
    };
    let first = post("preview").await;
    let second = post("refresh").await;
    let third = post("update").await;
    assert_eq!(
        c.post(&format!("{stack}/deployments/{third}/cancel"), &serde_json::json!({})).await.status,
        204
    );
    let (a, b, t) = (
        ended(&c, &stack, &first).await,
        ended(&c, &stack, &second).await,
        ended(&c, &stack, &third).await,
    );
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("succeeded"), Some("succeeded")),
        "{a}\n{b}"
    );
    assert!(b["jobs"][0]["started"].as_str() >= a["modified"].as_str(), "one at a time: {a}\n{b}");
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["message"], "cancelled before it started", "{t}");
    let list = c.get(&format!("{stack}/deployments")).await.json();
    assert_eq!(list["total"], 4, "{list}");
    assert_eq!(list["deployments"][0]["version"], 4, "newest first: {list}");

    // A failing pre-run command (the request's, merged into the settings) fails the run with
    // its output, and nothing is deployed.
    let body = serde_json::json!({"operation": "destroy",
        "operationContext": {"preRunCommands": ["echo broken >&2; exit 3"]}});
    let r = c.post(&format!("{stack}/deployments"), &body).await;
    let id = r.json()["id"].as_str().expect("an id").to_string();
    let run = ended(&c, &stack, &id).await;
    let log = whole_log(&c, &stack, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["message"].as_str().unwrap_or("").contains("exit status: 3"), "{run}");
    assert!(log.contains("Pre-run: broken") && !log.contains("Pulumi:"), "{log}");
    assert_eq!(p.item_count(), 2, "nothing was destroyed");
    // No source at all: refused up front.
    let r = c
        .post(
            &format!("{stack}/deployments"),
            &serde_json::json!({"operation": "update", "inheritSettings": false}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // A TTL schedule destroys the stack on time, and removes it (`deleteAfterDestroy`).
    let when = stackhouse::service::environments::rfc3339(server.app.clock.now() + 3600);
    let body = serde_json::json!({"timestamp": when, "deleteAfterDestroy": true});
    let r = c.post(&format!("{stack}/deployments/ttl/schedules"), &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tick =
        || stackhouse::service::deploy::scheduler::tick(&server.app, server.app.clock.now(), 5);
    assert!(tick().await.expect("tick").fired.is_empty(), "not yet");
    server.app.clock.advance(3601);
    let fired = tick().await.expect("tick");
    assert_eq!(fired.fired.len(), 1, "{fired:?}");
    let id = fired.fired[0].2.clone();
    // The stack (and so its runs' pages) is gone at the end: the status route still answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let status = loop {
        let got = c.get(&format!("/api/deployments/{id}/status")).await.json();
        if matches!(got.as_str(), Some("succeeded" | "failed")) {
            break got;
        }
        assert!(std::time::Instant::now() < deadline, "the TTL run never ended: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(status, "succeeded");
    assert_eq!(p.item_count(), 0, "destroyed");
    assert_eq!(c.get(&stack).await.status, 404, "and removed");
    server.stop().await;
}

/// `pulumi stack schedule` (the CLI's own commands) against this server: a stack without
/// deployment settings gets a clear refusal; raw, drift and TTL schedules are made, listed with
/// the kinds and settings the CLI reads off their definitions, edited, read and removed.
pub async fn stack_schedules_with_the_real_cli(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let c = server.client();
    let project = p.project("remote", &Program::items(1));
    let dev = p.fq("remote", "sched");
    p.run(&project.dir, &["stack", "init", &dev]).await.ok();
    let schedule = |args: &[&str]| {
        let mut all = vec!["stack", "schedule"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--stack", &dev]);
        all.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| {
        let (p, dir) = (&p, project.dir.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            p.run(&dir, &args).await
        }
    };
    let raw = ["new", "--kind", "raw", "--operation", "refresh", "--cron", "0 */4 * * *", "--yes"];
    let refused = run(schedule(&raw)).await.failed();
    assert!(refused.all().contains("does not have deployment settings"), "{refused}");

    let settings =
        serde_json::json!({"sourceContext": {"git": {"repoUrl": "https://git.example.com/x.git"}}});
    let at = format!("/api/stacks/{}/remote/sched/deployments/settings", p.org);
    assert_eq!(c.put(&at, &settings).await.status, 200);
    let json_of = |out: crate::pulumi::Out| -> serde_json::Value {
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let mut args: Vec<&str> = raw.to_vec();
    args.extend(["--output", "json"]);
    let made = json_of(run(schedule(&args)).await.ok());
    let raw_id = made["id"].as_str().expect("an id").to_string();
    assert_eq!(
        (made["type"].as_str(), made["schedule"].as_str()),
        (Some("raw"), Some("0 */4 * * *"))
    );
    let drift = ["new", "--kind", "drift", "--cron", "0 6 * * *", "--auto-remediate", "--yes"];
    run(schedule(&drift)).await.ok();
    let when = stackhouse::service::environments::rfc3339(server.app.clock.now() + 86_400);
    let ttl = ["new", "--kind", "ttl", "--once", &when, "--delete-after-destroy", "--yes"];
    run(schedule(&ttl)).await.ok();

    let listed = json_of(run(schedule(&["list", "--output", "json"])).await.ok());
    let rows = listed["schedules"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["type"].as_str().unwrap_or(""), r["settings"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("raw", "pulumi refresh"),
            ("drift", "detect + auto-remediate"),
            ("ttl", "destroy + delete stack")
        ],
        "{listed}"
    );
    assert_eq!(rows[2]["schedule"], "Once", "{listed}");
    let table = run(schedule(&["list"])).await.ok();
    assert!(table.stdout.contains(&raw_id), "{table}");

    run(schedule(&["edit", &raw_id, "--cron", "15 3 * * *"])).await.ok();
    let got = json_of(run(schedule(&["get", &raw_id, "--output", "json"])).await.ok());
    assert_eq!(got["schedule"], "15 3 * * *", "{got}");
    assert!(got["nextRun"].as_str().unwrap_or("").ends_with("03:15:00.000"), "{got}");
    assert_eq!(got["settings"], "pulumi refresh", "the operation was kept: {got}");

    run(schedule(&["remove", &raw_id, "--yes"])).await.ok();
    let listed = json_of(run(schedule(&["list", "--output", "json"])).await.ok());
    assert_eq!(listed["schedules"].as_array().map(Vec::len), Some(2), "{listed}");
    let gone = run(schedule(&["get", &raw_id])).await.failed();
    assert!(gone.all().contains("not found"), "{gone}");
    server.stop().await;
}

/// Drift with the real CLI: a `detect-drift` run of an unchanged stack finds none; after an
/// item's file is changed out of band, the next finds it (its refresh preview's changes), and
/// with `remediateIfDriftDetected` a `remediate-drift` run puts the file back; `pulumi stack
/// drift status` and `list` show it as against Pulumi Cloud.
pub async fn drift_is_detected_and_remediated_with_the_real_cli(target: Target) {
    let server = TestServer::start(target).await;
    let _jobs = server.deploying();
    let p = Pulumi::login(&server).await;
    let c = server.client();
    let url = program_repo(&p, 2);
    let project = p.project("remote", &Program::items(2));
    let fq = p.fq("remote", "drifty");
    p.run(&project.dir, &["stack", "init", &fq]).await.ok();
    let stack = format!("/api/stacks/{}/remote/drifty", p.org);
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
    let settings = serde_json::json!({
        "sourceContext": {"git": {"repoUrl": url, "branch": "release", "repoDir": "infra"}},
        "operationContext": {
            "environmentVariables": {"PATH": path,
                                     "STACKHOUSE_TEST_ITEMS_DIR": p.items_dir().display().to_string()},
            "options": {"skipInstallDependencies": true}
        }
    });
    assert_eq!(c.put(&format!("{stack}/deployments/settings"), &settings).await.status, 200);
    let run = |body: serde_json::Value| {
        let (c, at) = (&c, format!("{stack}/deployments"));
        async move {
            let r = c.post(&at, &body).await;
            assert_eq!(r.status, 202, "{r:?}");
            r.json()["id"].as_str().expect("an id").to_string()
        }
    };
    let up = run(serde_json::json!({"operation": "update"})).await;
    assert_eq!(ended(&c, &stack, &up).await["status"], "succeeded");
    assert_eq!(p.item_count(), 2);

    let clean = run(serde_json::json!({"operation": "detect-drift"})).await;
    let done = ended(&c, &stack, &clean).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", whole_log(&c, &stack, &clean).await);
    let status = c.get(&format!("{stack}/drift/status")).await.json();
    assert_eq!(status["driftDetected"], false, "{status}");
    assert_eq!(status["latestDriftRun"], clean.as_str(), "{status}");

    // Someone edits an item by hand.
    let tampered = std::fs::read_dir(p.items_dir())
        .expect("items")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("value-0")))
        .expect("item-0's file");
    std::fs::write(&tampered, "changed by hand").expect("tamper");
    let body = serde_json::json!({"operation": "detect-drift",
        "operationContext": {"options": {"remediateIfDriftDetected": true}}});
    let found = run(body).await;
    let done = ended(&c, &stack, &found).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let status = c.get(&format!("{stack}/drift/status")).await.json();
    assert_eq!(
        (status["driftDetected"].as_bool(), status["latestDriftRun"].as_str()),
        (Some(true), Some(found.as_str())),
        "{status}"
    );
    let drift_run = c.get(&format!("{stack}/drift/runs/{found}")).await.json();
    assert_eq!(drift_run["detectUpdate"]["resourceChanges"]["update"], 1, "{drift_run}");

    // The remediation runs `pulumi up`, which puts the file back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let fixed = loop {
        let got = c.get(&format!("{stack}/drift/runs/{found}")).await.json();
        if matches!(got["remediateUpdate"]["status"].as_str(), Some("succeeded" | "failed")) {
            break got;
        }
        assert!(std::time::Instant::now() < deadline, "no remediation: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(fixed["remediateUpdate"]["status"], "succeeded", "{fixed}");
    assert_eq!(std::fs::read_to_string(&tampered).expect("the item"), "value-0");
    let listed = c.get(&format!("{stack}/drift/runs")).await.json();
    assert_eq!(listed["total"], 2, "the two drift runs: {listed}");
    assert_eq!(listed["driftRuns"][0]["id"], found.as_str(), "newest first: {listed}");

    let text = p.run(&project.dir, &["stack", "drift", "status", "--stack", &fq]).await.ok();
    assert!(
        text.stdout.contains("Drift detected:    yes")
            || text.stdout.contains("Drift detected:    true"),
        "{text}"
    );
    let list = p.run(&project.dir, &["stack", "drift", "list", "--stack", &fq]).await.ok();
    // A table (ids wrap in a narrow terminal): both runs, the newest with drift.
    assert!(list.stdout.contains("Showing 2 of 2 drift run(s)"), "{list}");
    assert!(list.stdout.contains("│ yes") && list.stdout.contains("│ no"), "{list}");
    server.stop().await;
}
