//! The end-to-end suite: the real Pulumi CLI against the emulator, on every backend. Each test
//! is what a user does at a terminal, and asserts what they see (exit status, key lines of
//! output) and what is stored (`stack export`, `stack history`, the provider's items).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stackhouse::app::Settings;

pub use crate::cli_deploy::{
    deployments_run_from_settings_with_the_real_cli,
    drift_is_detected_and_remediated_with_the_real_cli, runner_deploys_from_git_with_the_real_cli,
    stack_schedules_with_the_real_cli,
};
pub use crate::cli_env::environments_with_pulumi_env;
pub use crate::cli_policy::policy_packs_are_enforced_on_up;
pub use crate::cli_registry::{packages_publish_and_remove, templates_publish_and_new};
pub use crate::cli_search::org_search_finds_what_up_created;
use crate::pulumi::{Item, Out, Program, Project, Pulumi};
use crate::server::{Target, TestServer};

/// Declares the suite for one backend.
#[macro_export]
macro_rules! cli_tests {
    ($target:expr) => {
        $crate::cli_tests!(@each $target;
            login_whoami_org_logout,
            stack_init_ls_select_tags_rm,
            up_preview_refresh_destroy,
            up_of_500_resources,
            up_target_changes_only_the_target,
            failed_up_keeps_what_was_created_and_the_next_up_fixes_it,
            persistence_modes_end_in_the_same_state,
            export_import_history_and_outputs,
            import_and_state_commands,
            service_secrets_and_stack_references,
            rename_project_and_stack,
            concurrent_up_conflicts_and_cancel_ends_it,
            killed_cli_leaves_a_stack_the_reaper_frees,
            large_state_export_follows_the_redirect,
            org_search_finds_what_up_created,
            environments_with_pulumi_env,
            policy_packs_are_enforced_on_up,
            templates_publish_and_new,
            packages_publish_and_remove,
            runner_deploys_from_git_with_the_real_cli,
            deployments_run_from_settings_with_the_real_cli,
            stack_schedules_with_the_real_cli,
            drift_is_detected_and_remediated_with_the_real_cli,
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::cli_suite::$name(make(stringify!($name))).await;
            }
        )*
    };
}

fn stack_path(p: &Pulumi, project: &str, stack: &str) -> String {
    format!("/api/stacks/{}/{project}/{stack}", p.org)
}

/// `pulumi stack export` as JSON.
async fn export(p: &Pulumi, project: &Project, stack: &str, extra: &[&str]) -> Value {
    let mut args = vec!["stack", "export", "--stack", stack];
    args.extend_from_slice(extra);
    p.run(&project.dir, &args).await.ok().json()
}

/// The custom resources of an export (not the stack, not providers), by logical name.
fn items_of(export: &Value) -> Vec<(String, Value)> {
    let resources = export["deployment"]["resources"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<(String, Value)> = resources
        .into_iter()
        .filter(|r| r["type"] == "stackhouse-test:index:Item")
        .map(|r| {
            let urn = r["urn"].as_str().unwrap_or_default();
            (urn.rsplit("::").next().unwrap_or_default().to_string(), r)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn item_value(export: &Value, name: &str) -> Option<String> {
    items_of(export)
        .into_iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, r)| r["outputs"]["value"].as_str().map(str::to_string))
}

/// `pulumi stack history --json`, newest first.
async fn history(p: &Pulumi, project: &Project, stack: &str) -> Vec<Value> {
    let out = p.run(&project.dir, &["stack", "history", "--json", "--stack", stack]).await.ok();
    out.json().as_array().cloned().unwrap_or_default()
}

/// Waits until `cond` holds for the stack as `GET S` shows it (at most `limit`).
async fn wait_for_stack(
    server: &TestServer,
    path: &str,
    limit: Duration,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let r = server.client().get(path).await;
        if r.status == 200 {
            let v = r.json();
            if cond(&v) {
                return v;
            }
        }
        if Instant::now() > deadline {
            panic!(
                "stack {path} never got to: {what} (last: {:?})",
                String::from_utf8_lossy(&r.body)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `pulumi up --yes --skip-preview` that must succeed.
async fn up(p: &Pulumi, project: &Project, stack: &str) -> Out {
    p.run(&project.dir, &["up", "--yes", "--skip-preview", "--stack", stack]).await.ok()
}

async fn init(p: &Pulumi, project: &Project, stack: &str) {
    p.run(&project.dir, &["stack", "init", &p.fq(&project.name, stack)]).await.ok();
}

/// `login` with a token, `whoami -v`, `org`, `logout`.
pub async fn login_whoami_org_logout(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let who = p.run_here(&["whoami", "-v"]).await.ok();
    // A personal token: Pulumi Cloud sends no `tokenInfo` for it.
    who.says(&format!("User: {}", server.user)).says("Token type: personal");
    who.says(&format!("Organizations: {}", server.user));
    let org = p.run_here(&["org"]).await.ok();
    org.says(&server.user);
    p.run_here(&["org", "get-default"]).await.ok().says(&server.user);

    // Machine tokens: the CLI names the organization or team the token belongs to.
    let admin = server.client();
    let org = server.user.clone();
    let r = admin
        .post(&format!("/api/orgs/{org}/tokens"), &json!({"name": "ci", "admin": false}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let org_token = r.json()["tokenValue"].as_str().unwrap_or_default().to_string();
    let bot = Pulumi::login_as(&server, &org_token, &org).await;
    let who = bot.run_here(&["whoami", "-v"]).await.ok();
    who.says(&format!("Token type: organization: {org}")).says("Token name: ci");
    let team = json!({"organization": org, "teamType": "pulumi", "name": "web",
                      "displayName": "Web", "description": ""});
    assert_eq!(admin.post(&format!("/api/orgs/{org}/teams/pulumi"), &team).await.status, 200);
    let r =
        admin.post(&format!("/api/orgs/{org}/teams/web/tokens"), &json!({"name": "web-ci"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let team_token = r.json()["tokenValue"].as_str().unwrap_or_default().to_string();
    let web = Pulumi::login_as(&server, &team_token, &org).await;
    web.run_here(&["whoami", "-v"]).await.ok().says("Token type: team: web");

    // A wrong token is refused at login with the CLI's own message.
    let wrong = Pulumi::new(&server.base, "pul-not-a-token", &server.user);
    let r = wrong.run_here(&["login", &server.base]).await.failed();
    r.says("Unauthorized: No credentials provided or are invalid");

    p.run_here(&["logout"]).await.ok().says("Logged out");
    let creds = std::fs::read_to_string(p_home_credentials(&p)).unwrap_or_default();
    assert!(!creds.contains(&format!("\"current\": \"{}\"", server.base)), "{creds}");
    server.stop().await;
}

fn p_home_credentials(p: &Pulumi) -> std::path::PathBuf {
    p.items_dir().parent().map(|r| r.join("home/credentials.json")).unwrap_or_default()
}

/// `stack init/ls/select/unselect/rm [--force]`, `stack tag set/get/ls/rm`.
pub async fn stack_init_ls_select_tags_rm(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let proj = p.project("tags", &Program::items(1));
    init(&p, &proj, "dev").await;
    init(&p, &proj, "prod").await;
    let again = p.run(&proj.dir, &["stack", "init", &p.fq("tags", "dev")]).await.failed();
    again.says("already exists");

    let ls = p.run(&proj.dir, &["stack", "ls"]).await.ok();
    ls.says("dev").says("prod").says("n/a");
    let ls = p.run(&proj.dir, &["stack", "ls", "--json"]).await.ok().json();
    let names: Vec<String> = ls
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .map(String::from)
        .collect();
    assert_eq!(names.len(), 2, "{ls}");
    // `prod` was selected last by `stack init`.
    assert!(
        ls.as_array().into_iter().flatten().any(|s| s["name"] == "prod" && s["current"] == true),
        "{ls}"
    );

    p.run(&proj.dir, &["stack", "select", "dev"]).await.ok();
    p.run(&proj.dir, &["stack"]).await.ok().says("Current stack is dev");
    let missing = p.run(&proj.dir, &["stack", "select", "nope"]).await.failed();
    missing.says("no stack named 'nope' found");
    p.run(&proj.dir, &["stack", "unselect"]).await.ok();
    let none = p.run(&proj.dir, &["stack", "ls", "--json"]).await.ok().json();
    assert!(none.as_array().into_iter().flatten().all(|s| s["current"] != true), "{none}");

    p.run(&proj.dir, &["stack", "tag", "set", "owner", "me", "--stack", "dev"]).await.ok();
    p.run(&proj.dir, &["stack", "tag", "set", "team", "platform", "--stack", "dev"]).await.ok();
    let got = p.run(&proj.dir, &["stack", "tag", "get", "owner", "--stack", "dev"]).await.ok();
    assert_eq!(got.stdout.trim(), "me", "{got}");
    let tags =
        p.run(&proj.dir, &["stack", "tag", "ls", "--json", "--stack", "dev"]).await.ok().json();
    assert_eq!(tags["owner"], "me", "{tags}");
    assert_eq!(tags["team"], "platform", "{tags}");
    assert_eq!(tags["pulumi:project"], "tags", "the CLI's own tags are there too: {tags}");
    p.run(&proj.dir, &["stack", "tag", "rm", "owner", "--stack", "dev"]).await.ok();
    let tags =
        p.run(&proj.dir, &["stack", "tag", "ls", "--json", "--stack", "dev"]).await.ok().json();
    assert!(tags.get("owner").is_none(), "{tags}");
    assert_eq!(tags["team"], "platform", "{tags}");
    let gone = p.run(&proj.dir, &["stack", "tag", "get", "owner", "--stack", "dev"]).await.failed();
    gone.says("owner");

    // A stack with resources needs --force.
    up(&p, &proj, "dev").await;
    let rm = p.run(&proj.dir, &["stack", "rm", "--yes", "dev"]).await.failed();
    rm.says("still has resources");
    p.run(&proj.dir, &["stack", "rm", "--yes", "--force", "dev"]).await.ok();
    p.run(&proj.dir, &["stack", "rm", "--yes", "prod"]).await.ok();
    let ls = p.run(&proj.dir, &["stack", "ls", "--json"]).await.ok().json();
    assert_eq!(ls.as_array().map(Vec::len), Some(0), "{ls}");
    let r = server.client().get(&stack_path(&p, "tags", "dev")).await;
    assert_eq!(r.status, 404);
    server.stop().await;
}

/// `up` of 1 and 50 resources, `preview`, `preview --refresh`, drift seen by `refresh`,
/// `destroy`.
pub async fn up_preview_refresh_destroy(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let proj = p.project("sizes", &Program::items(1));
    init(&p, &proj, "dev").await;
    let out = up(&p, &proj, "dev").await;
    // The CLI counts the stack resource too.
    out.says("+ 2 created");
    assert_eq!(p.item_count(), 1);

    proj.write(&Program::items(50));
    let preview = p.run(&proj.dir, &["preview", "--stack", "dev"]).await.ok();
    preview.says("+ 49 to create");
    assert_eq!(p.item_count(), 1, "a preview creates nothing");
    let out = p.run(&proj.dir, &["up", "--yes", "--stack", "dev"]).await.ok();
    out.says("+ 49 created").says("2 unchanged");
    assert_eq!(p.item_count(), 50);
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(items_of(&exp).len(), 50);

    // Someone edits an item behind Pulumi's back: refresh notices and records it.
    let (_, first) = items_of(&exp).into_iter().find(|(n, _)| n == "item-7").expect("item-7");
    let file = first["outputs"]["path"].as_str().expect("path output").to_string();
    std::fs::write(&file, "changed by hand").expect("edit an item");
    let preview = p.run(&proj.dir, &["preview", "--refresh", "--stack", "dev"]).await.ok();
    preview.says("~ 1 to update");
    let refresh = p.run(&proj.dir, &["refresh", "--yes", "--stack", "dev"]).await.ok();
    refresh.says("~ 1 updated");
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(item_value(&exp, "item-7").as_deref(), Some("changed by hand"));
    // The program wins again on the next up.
    p.run(&proj.dir, &["up", "--yes", "--stack", "dev"]).await.ok().says("~ 1 updated");

    let hist = history(&p, &proj, "dev").await;
    let kinds: Vec<&str> = hist.iter().filter_map(|h| h["kind"].as_str()).collect();
    assert_eq!(kinds, ["update", "refresh", "update", "update"], "{hist:?}");

    let destroy = p.run(&proj.dir, &["destroy", "--yes", "--stack", "dev"]).await.ok();
    destroy.says("- 51 deleted");
    assert_eq!(p.item_count(), 0);
    let exp = export(&p, &proj, "dev", &[]).await;
    assert!(items_of(&exp).is_empty(), "{exp}");
    let info = server.client().get(&stack_path(&p, "sizes", "dev")).await.json();
    assert!(info.get("currentOperation").is_none() || info["currentOperation"].is_null(), "{info}");
    server.stop().await;
}

/// `up` of 500 resources, then a no-op `up`.
pub async fn up_of_500_resources(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let proj = p.project("big", &Program::items(500));
    init(&p, &proj, "dev").await;
    up(&p, &proj, "dev").await.says("+ 501 created");
    assert_eq!(p.item_count(), 500);
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(items_of(&exp).len(), 500);
    up(&p, &proj, "dev").await.says("501 unchanged");
    let ls = p.run(&proj.dir, &["stack", "ls", "--json"]).await.ok().json();
    let count = ls.as_array().and_then(|a| a.first()).map(|s| s["resourceCount"].clone());
    let stored = exp["deployment"]["resources"].as_array().map(Vec::len);
    assert_eq!(count, stored.map(|n| json!(n)), "stack, provider and 500 items: {ls}");
    server.stop().await;
}

/// `up --target` changes only the targeted resource.
pub async fn up_target_changes_only_the_target(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let mut prog = Program::items(2);
    let proj = p.project("target", &prog);
    init(&p, &proj, "dev").await;
    up(&p, &proj, "dev").await;
    prog.items[0].value = "new-0".into();
    prog.items[1].value = "new-1".into();
    proj.write(&prog);
    let exp = export(&p, &proj, "dev", &[]).await;
    let urn = items_of(&exp)[0].1["urn"].as_str().expect("urn").to_string();
    let out = p
        .run(&proj.dir, &["up", "--yes", "--skip-preview", "--target", &urn, "--stack", "dev"])
        .await
        .ok();
    out.says("~ 1 updated");
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(item_value(&exp, "item-0").as_deref(), Some("new-0"));
    assert_eq!(item_value(&exp, "item-1").as_deref(), Some("value-1"), "untargeted: unchanged");
    server.stop().await;
}

/// An `up` where one create fails keeps the others, reports the failure, and the next `up`
/// (with the failure fixed) completes the stack.
pub async fn failed_up_keeps_what_was_created_and_the_next_up_fixes_it(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let mut prog = Program::items(6);
    prog.items[3].fail = true;
    let proj = p.project("halfway", &prog);
    init(&p, &proj, "dev").await;
    let out = p.run(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", "dev"]).await.failed();
    out.says("item refused: fail is set");
    let exp = export(&p, &proj, "dev", &[]).await;
    let stored = items_of(&exp);
    assert_eq!(stored.len(), p.item_count(), "every item that exists is recorded: {exp}");
    assert!(stored.iter().all(|(n, _)| n != "item-3"));
    let hist = history(&p, &proj, "dev").await;
    assert_eq!(hist[0]["result"], "failed", "{hist:?}");

    prog.items[3].fail = false;
    proj.write(&prog);
    up(&p, &proj, "dev").await;
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(items_of(&exp).len(), 6);
    assert_eq!(p.item_count(), 6, "nothing created twice");
    let hist = history(&p, &proj, "dev").await;
    assert_eq!(hist[0]["result"], "succeeded", "{hist:?}");
    server.stop().await;
}

/// A stack export without what legitimately differs between two runs of the same program on
/// two stacks: times, provider ids, item paths and the stack's own name.
fn normalise(export: &Value, stack: &str) -> Value {
    fn walk(v: &mut Value, stack: &str) {
        match v {
            Value::Object(map) => {
                for key in
                    ["created", "modified", "time", "id", "path", "stackTrace", "sourcePosition"]
                {
                    if map.contains_key(key) {
                        map.insert(key.to_string(), Value::Null);
                    }
                }
                // A provider reference is `<provider urn>::<provider id>`.
                if let Some(Value::String(p)) = map.get_mut("provider") {
                    if let Some((urn, _)) = p.rsplit_once("::") {
                        *p = urn.to_string();
                    }
                }
                for (_, child) in map.iter_mut() {
                    walk(child, stack);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, stack)),
            Value::String(s) => *s = s.replace(stack, "STACK"),
            _ => {}
        }
    }
    let mut v = export.clone();
    walk(&mut v, stack);
    v
}

/// Asserts two normalised exports hold the same resources, naming the first that differs
/// (whole exports are megabytes of text).
#[track_caller]
fn assert_same_resources(a: &Value, b: &Value, what: &str) {
    // Independent resources are recorded in the order they finished, which differs per run.
    let sorted = |v: &Value| {
        let mut r = v["deployment"]["resources"].as_array().cloned().unwrap_or_default();
        r.sort_by_key(|x| x["urn"].to_string());
        r
    };
    let (ra, rb) = (sorted(a), sorted(b));
    let urns = |r: &[Value]| r.iter().map(|x| x["urn"].to_string()).collect::<Vec<_>>();
    assert_eq!(urns(&ra), urns(&rb), "{what}: resources differ");
    for (x, y) in ra.iter().zip(&rb) {
        if x != y {
            let mut keys: Vec<&String> =
                x.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            keys.retain(|k| x[k.as_str()] != y[k.as_str()]);
            let show = |v: &Value| {
                let t = v.to_string();
                if t.len() > 400 {
                    format!("{}…", &t[..400])
                } else {
                    t
                }
            };
            let diffs: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}: {} vs {}", show(&x[k.as_str()]), show(&y[k.as_str()])))
                .collect();
            panic!("{what}: {} differs: {}", x["urn"], diffs.join("; "));
        }
    }
    assert_eq!(
        a["deployment"]["pending_operations"], b["deployment"]["pending_operations"],
        "{what}"
    );
}

/// What must agree between two histories of the same programs. How many resources a failed
/// update left `same` depends on which independent steps finished before the engine stopped.
fn history_shape(hist: &[Value]) -> Vec<Value> {
    hist.iter()
        .map(|h| {
            let changes =
                if h["result"] == "succeeded" { h["resourceChanges"].clone() } else { Value::Null };
            json!({"kind": h["kind"], "result": h["result"], "version": h["version"],
                   "resourceChanges": changes})
        })
        .collect()
}

/// The same programs in the three persistence modes end with the same export and history.
pub async fn persistence_modes_end_in_the_same_state(target: Target) {
    let server = TestServer::start(target).await;
    let mut results = Vec::new();
    for (stack, mode) in [
        ("journal", None),
        ("verbatim", Some(("PULUMI_DISABLE_JOURNALING", "true"))),
        ("full", Some(("PULUMI_OPTIMIZED_CHECKPOINT_PATCH", "false"))),
    ] {
        let mut p = Pulumi::login(&server).await;
        if let Some((k, v)) = mode {
            p.set_env(k, v);
            if k == "PULUMI_OPTIMIZED_CHECKPOINT_PATCH" {
                p.set_env("PULUMI_DISABLE_JOURNALING", "true");
            }
        }
        let mut prog = Program::items(20);
        let proj = p.project("modes", &prog);
        init(&p, &proj, stack).await;
        up(&p, &proj, stack).await;
        for item in prog.items.iter_mut().take(5) {
            item.value.push_str("-changed");
        }
        prog.items.truncate(17);
        prog.items.push(Item::new("late", "late"));
        // Big enough for delta checkpoints (over the 512 KiB cutoff) in the verbatim mode.
        prog.items[0].pad_bytes = 700_000;
        proj.write(&prog);
        up(&p, &proj, stack).await;
        prog.items[3].fail = true;
        prog.items[4].value = "never".into();
        proj.write(&prog);
        p.run(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", stack]).await.failed();
        let exp = export(&p, &proj, stack, &[]).await;
        let hist = history(&p, &proj, stack).await;
        results.push((stack, normalise(&exp, stack), history_shape(&hist)));
    }
    let (first, exp0, hist0) = &results[0];
    for (stack, exp, hist) in &results[1..] {
        assert_eq!(items_of(exp0).len(), items_of(exp).len(), "{first} vs {stack}: item count");
        assert_same_resources(exp0, exp, &format!("{first} vs {stack}"));
        assert_eq!(hist0, hist, "{first} vs {stack}: history");
    }
    server.stop().await;
}

/// `stack export`/`import` round trip, `export --version N`, `history`, `output`.
pub async fn export_import_history_and_outputs(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let mut prog = Program::items(3).output("first", "${item-0.value}");
    let proj = p.project("io", &prog);
    init(&p, &proj, "dev").await;
    up(&p, &proj, "dev").await;
    prog.items[0].value = "second".into();
    proj.write(&prog);
    up(&p, &proj, "dev").await;

    let out = p.run(&proj.dir, &["stack", "output", "first", "--stack", "dev"]).await.ok();
    assert_eq!(out.stdout.trim(), "second", "{out}");
    let outs = p.run(&proj.dir, &["stack", "output", "--json", "--stack", "dev"]).await.ok().json();
    assert_eq!(outs, json!({"first": "second"}));

    let v1 = export(&p, &proj, "dev", &["--version", "1"]).await;
    assert_eq!(item_value(&v1, "item-0").as_deref(), Some("value-0"));
    let v2 = export(&p, &proj, "dev", &["--version", "2"]).await;
    assert_eq!(item_value(&v2, "item-0").as_deref(), Some("second"));
    let hist = history(&p, &proj, "dev").await;
    assert_eq!(hist.len(), 2, "{hist:?}");
    assert_eq!(hist[0]["version"], 2);
    assert_eq!(hist[0]["resourceChanges"]["update"], 1, "{hist:?}");
    assert_eq!(hist[1]["resourceChanges"]["create"], 4, "{hist:?}");
    let text = p.run(&proj.dir, &["stack", "history", "--stack", "dev"]).await.ok();
    text.says("Version").says("succeeded");

    // Round trip: export to a file, go back to version 1's state by import, export again.
    let file = proj.dir.join("v1.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&v1).expect("json")).expect("write v1");
    let file_arg = file.to_string_lossy().to_string();
    p.run(&proj.dir, &["stack", "import", "--file", &file_arg, "--stack", "dev"]).await.ok();
    let now = export(&p, &proj, "dev", &[]).await;
    assert_eq!(now["deployment"]["resources"], v1["deployment"]["resources"]);
    let hist = history(&p, &proj, "dev").await;
    assert_eq!(hist.len(), 3, "import is a version: {hist:?}");
    assert_eq!(hist[0]["kind"], "import", "{hist:?}");
    // And the program moves it forward again.
    p.run(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", "dev"])
        .await
        .ok()
        .says("~ 1 updated");
    server.stop().await;
}

/// `pulumi import` of an existing item, `state unprotect`, `state rename`, `state delete`.
pub async fn import_and_state_commands(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let mut prog = Program::items(2);
    prog.items[0].protect = true;
    let proj = p.project("state", &prog);
    init(&p, &proj, "dev").await;
    up(&p, &proj, "dev").await;

    // Something created outside Pulumi, adopted by `pulumi import`.
    std::fs::write(p.items_dir().join("item-outside"), "made by hand").expect("write item");
    let out = p
        .run(
            &proj.dir,
            &[
                "import",
                "stackhouse-test:index:Item",
                "adopted",
                "item-outside",
                "--yes",
                "--stack",
                "dev",
            ],
        )
        .await
        .ok();
    out.says("= 1 imported");
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(item_value(&exp, "adopted").as_deref(), Some("made by hand"));
    // `pulumi import` creates its update under `S/update` like `up` (client.go CreateUpdate),
    // so it is recorded as an update that imported one resource.
    let hist = history(&p, &proj, "dev").await;
    assert_eq!(hist[0]["kind"], "update", "{hist:?}");
    assert_eq!(hist[0]["resourceChanges"]["import"], 1, "{hist:?}");

    let urn_of = |exp: &Value, name: &str| {
        items_of(exp)
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, r)| r["urn"].as_str().map(String::from))
            .unwrap_or_else(|| panic!("no {name} in {exp}"))
    };
    let protected = urn_of(&exp, "item-0");
    let del = p
        .run(&proj.dir, &["state", "delete", &protected, "--yes", "--stack", "dev"])
        .await
        .failed();
    del.says("protected");
    p.run(&proj.dir, &["state", "unprotect", &protected, "--yes", "--stack", "dev"]).await.ok();
    let exp = export(&p, &proj, "dev", &[]).await;
    let (_, r) = items_of(&exp).into_iter().find(|(n, _)| n == "item-0").expect("item-0");
    assert!(r.get("protect").is_none() || r["protect"] == false, "{r}");

    let item1 = urn_of(&exp, "item-1");
    p.run(&proj.dir, &["state", "rename", &item1, "renamed", "--yes", "--stack", "dev"]).await.ok();
    let exp = export(&p, &proj, "dev", &[]).await;
    assert!(item_value(&exp, "renamed").is_some(), "{exp}");
    assert!(item_value(&exp, "item-1").is_none(), "{exp}");

    // An unprotected resource leaves the state; an imported one is protected (the CLI's
    // default for `pulumi import`) and needs --force.
    let item0 = urn_of(&exp, "item-0");
    p.run(&proj.dir, &["state", "delete", &item0, "--yes", "--stack", "dev"]).await.ok();
    let adopted = urn_of(&exp, "adopted");
    let del =
        p.run(&proj.dir, &["state", "delete", &adopted, "--yes", "--stack", "dev"]).await.failed();
    del.says("protected");
    p.run(&proj.dir, &["state", "delete", &adopted, "--force", "--yes", "--stack", "dev"])
        .await
        .ok();
    let exp = export(&p, &proj, "dev", &[]).await;
    assert!(item_value(&exp, "adopted").is_none(), "{exp}");
    assert!(item_value(&exp, "item-0").is_none(), "{exp}");
    assert!(p.items_dir().join("item-outside").exists(), "state delete leaves the item itself");
    let hist = history(&p, &proj, "dev").await;
    assert!(hist.len() >= 5, "every state edit is a version: {hist:?}");
    server.stop().await;
}

/// `config set --secret`, `config --show-secrets`, a secret output, StackReferences to plain
/// and secret outputs.
pub async fn service_secrets_and_stack_references(target: Target) {
    let server = TestServer::start(target).await;
    let indexing = server.indexing();
    let p = Pulumi::login(&server).await;
    let mut prog =
        Program::items(1).output("plain", "${item-0.value}").output("password", "${password}");
    prog.config.push("password".into());
    let proj = p.project("secrets", &prog);
    init(&p, &proj, "dev").await;
    p.run(&proj.dir, &["config", "set", "--secret", "password", "hunter2", "--stack", "dev"])
        .await
        .ok();
    let cfg = std::fs::read_to_string(proj.dir.join("Pulumi.dev.yaml")).expect("stack config");
    assert!(cfg.contains("secure:") && !cfg.contains("hunter2"), "{cfg}");
    let shown = p.run(&proj.dir, &["config", "--show-secrets", "--stack", "dev"]).await.ok();
    shown.says("hunter2");
    p.run(&proj.dir, &["config", "--stack", "dev"]).await.ok().never_says("hunter2");
    up(&p, &proj, "dev").await;

    let outs = p.run(&proj.dir, &["stack", "output", "--json", "--stack", "dev"]).await.ok().json();
    assert_eq!(outs["password"], "[secret]", "{outs}");
    let outs = p
        .run(&proj.dir, &["stack", "output", "--json", "--show-secrets", "--stack", "dev"])
        .await
        .ok()
        .json();
    assert_eq!(outs["password"], "hunter2", "{outs}");
    let raw = p.run(&proj.dir, &["stack", "export", "--stack", "dev"]).await.ok();
    raw.never_says("hunter2");
    let shown =
        p.run(&proj.dir, &["stack", "export", "--show-secrets", "--stack", "dev"]).await.ok();
    shown.says("hunter2");

    // A second stack reads both outputs through a StackReference.
    let reference = p.fq("secrets", "dev");
    let consumer = Program {
        raw_resources: vec![format!(
            "  ref:\n    type: pulumi:pulumi:StackReference\n    properties:\n      name: {reference}\n"
        )],
        ..Program::default()
    }
    .output("seen", "${ref.outputs[\"plain\"]}")
    .output("seenSecret", "${ref.outputs[\"password\"]}");
    let cproj = p.project("consumer", &consumer);
    init(&p, &cproj, "dev").await;
    up(&p, &cproj, "dev").await;
    let outs =
        p.run(&cproj.dir, &["stack", "output", "--json", "--stack", "dev"]).await.ok().json();
    assert_eq!(outs["seen"], "value-0", "{outs}");
    assert_eq!(outs["seenSecret"], "[secret]", "a secret stays secret across stacks: {outs}");
    let outs = p
        .run(&cproj.dir, &["stack", "output", "--json", "--show-secrets", "--stack", "dev"])
        .await
        .ok()
        .json();
    assert_eq!(outs["seenSecret"], "hunter2", "{outs}");

    // The service lists the reference the CLI stored, in both directions.
    let c = server.client();
    let org = &server.user;
    let producer = c.get(&format!("/api/stacks/{org}/secrets/dev")).await.json();
    let expected = json!([{"organization": org, "routingProject": "secrets",
                                       "name": "dev", "version": producer["version"]}]);
    let upstream = c.get(&format!("/api/stacks/{org}/consumer/dev/upstreamreferences")).await;
    assert_eq!(upstream.json()["referencedStacks"], expected, "{upstream:?}");
    let consumer = c.get(&format!("/api/stacks/{org}/consumer/dev")).await.json();
    let expected = json!([{"organization": org, "routingProject": "consumer",
                                       "name": "dev", "version": consumer["version"]}]);
    let started = Instant::now();
    loop {
        let downstream =
            c.get(&format!("/api/stacks/{org}/secrets/dev/downstreamreferences")).await.json();
        if downstream["referencedStacks"] == expected {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "never indexed: {downstream}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    indexing.stop().await;
    server.stop().await;
}

/// `stack rename` of the stack and of the project; `up`, `export` and secrets still work.
pub async fn rename_project_and_stack(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let mut prog = Program::items(2).output("password", "${password}");
    prog.config.push("password".into());
    let proj = p.project("before", &prog);
    init(&p, &proj, "dev").await;
    p.run(&proj.dir, &["config", "set", "--secret", "password", "s3cret", "--stack", "dev"])
        .await
        .ok();
    up(&p, &proj, "dev").await;

    p.run(&proj.dir, &["stack", "rename", &p.fq("before", "prod"), "--stack", "dev"]).await.ok();
    let exp = export(&p, &proj, "prod", &[]).await;
    assert!(
        items_of(&exp)
            .iter()
            .all(|(_, r)| r["urn"].as_str().unwrap_or("").starts_with("urn:pulumi:prod::before::")),
        "{exp}"
    );
    p.run(&proj.dir, &["config", "get", "password", "--stack", "prod"]).await.ok().says("s3cret");
    up(&p, &proj, "prod").await.says("3 unchanged");

    // Renaming the project: the CLI's project file must follow.
    p.run(&proj.dir, &["stack", "rename", &p.fq("after", "prod"), "--stack", "prod"]).await.ok();
    let renamed = project_renamed(&proj, "after", &prog);
    // Config keys are namespaced by project: the user moves them along.
    let cfg = std::fs::read_to_string(proj.dir.join("Pulumi.prod.yaml")).unwrap_or_default();
    assert!(cfg.contains("before:password"), "{cfg}");
    let cfg = cfg.replace("before:password", "after:password");
    std::fs::write(renamed.dir.join("Pulumi.prod.yaml"), cfg).expect("copy stack config");
    let exp = export(&p, &renamed, "prod", &[]).await;
    assert!(
        items_of(&exp)
            .iter()
            .all(|(_, r)| r["urn"].as_str().unwrap_or("").starts_with("urn:pulumi:prod::after::")),
        "{exp}"
    );
    up(&p, &renamed, "prod").await.says("3 unchanged");
    let outs = p
        .run(&renamed.dir, &["stack", "output", "--json", "--show-secrets", "--stack", "prod"])
        .await
        .ok()
        .json();
    assert_eq!(outs["password"], "s3cret", "{outs}");
    // History moves with the stack, and each rename is a version of its own (kind `rename`).
    let hist = history(&p, &renamed, "prod").await;
    let kinds: Vec<&str> = hist.iter().filter_map(|h| h["kind"].as_str()).collect();
    assert_eq!(kinds, ["update", "rename", "update", "rename", "update"], "{hist:?}");
    let r = server.client().get(&stack_path(&p, "before", "dev")).await;
    assert_eq!(r.status, 404);
    server.stop().await;
}

fn project_renamed(old: &Project, name: &str, prog: &Program) -> Project {
    let dir = old.dir.with_file_name(format!(
        "{name}-{}",
        old.dir.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).expect("create renamed project dir");
    let project = Project::at(dir, name, old);
    project.write(prog);
    project
}

/// A second `up` while one runs fails with the CLI's conflict message; `pulumi cancel` from
/// another process ends the running one; then `up` works.
pub async fn concurrent_up_conflicts_and_cancel_ends_it(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let mut prog = Program::items(2);
    prog.items[1].delay_ms = 15_000;
    let proj = p.project("busy", &prog);
    init(&p, &proj, "dev").await;
    let running = p
        .command(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", "dev"])
        .spawn()
        .expect("start up");
    let path = stack_path(&p, "busy", "dev");
    wait_for_stack(&server, &path, Duration::from_secs(120), "an update running", |s| {
        s["currentOperation"].is_object()
    })
    .await;

    let second =
        p.run(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", "dev"]).await.failed();
    second.says("Another update is currently in progress");
    let cancel = p.run(&proj.dir, &["cancel", "--yes", "--stack", "dev"]).await.ok();
    cancel.says("has been canceled");
    // The stack is free at once; the cancelled CLI learns of it on its next call to the
    // service (here when the slow create returns) and fails.
    let info = server.client().get(&path).await.json();
    assert!(!info["currentOperation"].is_object(), "{info}");
    let first = tokio::time::timeout(Duration::from_secs(300), running.wait_with_output())
        .await
        .expect("the cancelled up ends")
        .expect("wait for up");
    assert!(!first.status.success(), "the cancelled up fails");
    let hist = history(&p, &proj, "dev").await;
    assert_eq!(hist.len(), 1, "{hist:?}");
    assert_eq!(hist[0]["result"], "failed", "a cancelled update is failed in history: {hist:?}");

    prog.items[1].delay_ms = 0;
    proj.write(&prog);
    up(&p, &proj, "dev").await;
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(items_of(&exp).len(), 2);
    // The create that was in flight when the update was cancelled finished after the service
    // stopped accepting its result: that item is not in the state and is created again (as
    // with Pulumi Cloud, `pulumi cancel` can leave such an orphan). item-0 is not recreated.
    assert_eq!(p.item_count(), 3);
    server.stop().await;
}

/// A CLI killed with SIGKILL during `up` leaves a stack the lease reaper frees; the next `up`
/// works and forgets nothing that was recorded before the kill.
pub async fn killed_cli_leaves_a_stack_the_reaper_frees(target: Target) {
    let settings = Settings { lease_seconds: 20, ..Settings::default() };
    let server = TestServer::start_with(target, settings).await;
    let mut jobs = local_emulator::jobs::RunnerConfig::default();
    jobs.intervals.insert("job-lease-reaper", Duration::from_secs(1));
    let runner = local_emulator::jobs::start(server.app.clone(), &jobs);

    let p = Pulumi::login(&server).await;
    let mut prog = Program::items(6);
    prog.items[5].delay_ms = 600_000;
    prog.items[5].depends_on = (0..5).map(|i| format!("item-{i}")).collect();
    let proj = p.project("killed", &prog);
    init(&p, &proj, "dev").await;
    let mut cmd = p.command(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", "dev"]);
    cmd.process_group(0);
    let running = cmd.spawn().expect("start up");
    let pgid = running.id().expect("pid");
    // Five items exist and the slow sixth has started: the five creates were journaled.
    let deadline = Instant::now() + Duration::from_secs(120);
    while p.item_count() < 5 {
        assert!(Instant::now() < deadline, "the first five items were never created");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(killed.success());
    drop(running);
    let recorded = p.item_count();

    // The lease lapses 20 s after the last renewal; the reaper then ends the update and
    // publishes what it had recorded (the stack shows no operation as soon as the lease lapsed).
    let path = stack_path(&p, "killed", "dev");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = server.client().get(&format!("{path}/updates")).await;
        if r.status == 200 && r.json()["updates"].as_array().is_some_and(|u| !u.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the reaper never ended the update: {r:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let hist = history(&p, &proj, "dev").await;
    assert_eq!(hist[0]["result"], "failed", "the abandoned update ends as failed: {hist:?}");

    prog.items[5].delay_ms = 0;
    proj.write(&prog);
    up(&p, &proj, "dev").await;
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(items_of(&exp).len(), 6, "{exp}");
    assert_eq!(recorded, 5, "the slow item was still being created when the CLI was killed");
    assert_eq!(p.item_count(), 6, "nothing recorded before the kill was created again");
    runner.stop().await;
    server.stop().await;
}

/// A deployment bigger than the 4 MiB response limit: `stack export` follows the redirect to
/// the stored object, and a no-op `up` reads it back.
pub async fn large_state_export_follows_the_redirect(target: Target) {
    let settings = Settings { max_response_bytes: Some(4 << 20), ..Settings::default() };
    let server = TestServer::start_with(target, settings).await;
    let p = Pulumi::login(&server).await;
    // 12 × 600 KB of padding that gzip cannot shrink below the limit.
    let mut prog = Program::items(12);
    for item in &mut prog.items {
        item.pad_bytes = 600_000;
    }
    let proj = p.project("large", &prog);
    init(&p, &proj, "dev").await;
    up(&p, &proj, "dev").await;
    // What the server answers the CLI's export request: a redirect to the stored object.
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = direct
        .get(format!("{}{}/export", server.base, stack_path(&p, "large", "dev")))
        .header("Authorization", format!("token {}", server.token))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("export request");
    assert_eq!(r.status().as_u16(), 307, "{:?}", r.headers());
    let exp = export(&p, &proj, "dev", &[]).await;
    assert_eq!(items_of(&exp).len(), 12);
    let size = serde_json::to_vec(&exp).map(|v| v.len()).unwrap_or(0);
    assert!(size > 7_000_000, "the export is {size} bytes");
    up(&p, &proj, "dev").await.says("13 unchanged");
    server.stop().await;
}
