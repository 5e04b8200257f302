//! Conformance checks of the background jobs (docs/ARCHITECTURE.md, Leases expire and
//! Background jobs) over the emulator:
//! the lease reaper, history retention and blob garbage collection, and the queue plumbing
//! (partial batch failures, dead-letter queue, redrive). The `jobs_conformance_tests!` macro
//! runs every check against one backend.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use stackhouse::api::{Access, Needs};
use stackhouse::app::Settings;
use stackhouse::jobs::consumer::{dlq_list, dlq_redrive, poll_once, Backoff};
use stackhouse::jobs::table::{JOB_HISTORY_RETENTION, JOB_LEASE_REAPER, JOB_UPDATE_MATERIALISE};
use stackhouse::jobs::{Job, Trigger};
use stackhouse::names::{StackId, UpdateId};
use stackhouse::ports::{Item, Message, Query, SortKey};
use stackhouse::service::deployments::{self, version_key};
use stackhouse::service::journal::{JournalEntry, Replayer};
use stackhouse::service::materialise::{self, snapshot_key, Outcome, Request};
use stackhouse::service::retention::{self, Limits, Policy};
use stackhouse::service::updates::{self, Status};
use stackhouse::App;

use crate::fixtures;
use crate::server::{Client, Target, TestServer};
use crate::session::{self, create_and_start, Run};

/// Expands to one `#[tokio::test]` per jobs check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! jobs_conformance_tests {
    ($target:expr) => {
        $crate::jobs_conformance_tests!(@each $target;
            killed_checkpoint_session_is_reaped,
            killed_journal_session_is_reaped,
            a_renewing_cli_keeps_its_lease,
            reaping_is_idempotent_and_races_a_start_cleanly,
            the_emulator_reaps_on_its_timer,
            retention_keeps_the_newest_versions,
            retention_by_age_never_drops_the_current_deployment,
            retention_is_bounded_and_resumes,
            orphans_older_than_the_grace_period_are_removed,
            poisoned_messages_end_in_the_dlq_and_redrive,
            a_sent_message_wakes_its_idle_consumer,
            long_journal_is_materialised_while_running,
            killed_long_journal_is_reaped_from_its_snapshot,
            duplicate_and_late_materialise_messages_do_not_regress
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::jobs::$name(make(stringify!($name))).await;
            }
        )*
    };
}

async fn new_stack(server: &TestServer, name: &str) -> String {
    let c = server.client();
    let r = c.post(&format!("/api/stacks/{}/proj", server.user), &json!({"stackName": name})).await;
    assert_eq!(r.status, 200, "create stack: {r:?}");
    format!("/api/stacks/{}/proj/{name}", server.user)
}

/// The fixture deployment with its URNs in `stack` of project `proj`, keeping the first `n`
/// resources.
fn state(stack: &str, n: usize) -> Value {
    let mut text = fixtures::untyped_deployment("checkpoint-v3").to_string();
    for old in ["urn:pulumi:foo::countdown::", "urn:pulumi:dev::countdown::"] {
        text = text.replace(old, &format!("urn:pulumi:{stack}::proj::"));
    }
    let mut v: Value = serde_json::from_str(&text).expect("fixture JSON");
    let resources: Vec<Value> = v["deployment"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .take(n)
        .cloned()
        .collect();
    v["deployment"]["resources"] = Value::Array(resources);
    v
}

/// Runs a scheduled job once, through its entry in the job table, as a timer or EventBridge
/// would.
pub async fn run_job(app: &Arc<App>, job: &Job) -> Value {
    let Trigger::Schedule { run, .. } = job.trigger else {
        panic!("{} is not scheduled", job.name)
    };
    run(app.clone(), app.clock.now()).await.unwrap_or_else(|e| panic!("{} failed: {e}", job.name))
}

fn reaped(report: &Value) -> Vec<String> {
    report["reaped"]
        .as_array()
        .unwrap_or_else(|| panic!("reaper report: {report}"))
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect()
}

async fn stack_id(c: &Client, stack: &str) -> StackId {
    StackId::parse(c.get(stack).await.json()["id"].as_str().expect("stack id")).expect("stack id")
}

/// The id of an update run over HTTP, as the service takes it.
fn update_id(run: &Run) -> UpdateId {
    UpdateId::parse(&run.id).expect("update id")
}

/// An update that checkpoints `state` (or nothing) and succeeds.
async fn update(c: &Client, stack: &str, state: Option<&Value>) -> Run {
    let run = create_and_start(c, stack, "update", false).await.expect("update starts");
    if let Some(s) = state {
        let r = run.checkpoint(c, s).await;
        assert!(r.status.is_success(), "checkpoint: {r:?}");
    }
    let r = run.complete(c, "succeeded").await;
    assert!(r.status.is_success(), "complete: {r:?}");
    run
}

fn versions(history: &Value) -> Vec<i64> {
    history["updates"]
        .as_array()
        .unwrap_or_else(|| panic!("history: {history}"))
        .iter()
        .map(|u| u["version"].as_i64().expect("version"))
        .collect()
}

/// After a CLI died: no running operation, the update failed in history, a new update can
/// start, and the dead lease is refused.
async fn assert_freed(server: &TestServer, stack: &str, dead: &Run) {
    let c = server.client();
    let s = c.get(stack).await.json();
    assert!(s.get("currentOperation").is_none(), "no current operation: {s}");
    assert!(s["activeUpdate"].as_str().unwrap_or_default().is_empty(), "lease released: {s}");
    let h = c.get(&format!("{stack}/updates")).await.json();
    assert_eq!(h["updates"][0]["result"], "failed", "{h}");
    dead.renew(&c).await.error_message(403);
    let next = create_and_start(&c, stack, "refresh", false).await.expect("the stack is usable");
    assert!(next.complete(&c, "succeeded").await.status.is_success());
}

/// A CLI killed mid-update with full checkpoints: one reaper run after the lease lapsed ends
/// the update as failed, keeps its last checkpoint and frees the stack.
pub async fn killed_checkpoint_session_is_reaped(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let first = state("dev", 5);
    let last = state("dev", 12);
    let run = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    assert!(run.checkpoint(&c, &first).await.status.is_success());
    assert!(run.checkpoint(&c, &last).await.status.is_success());

    // Before the lease lapses the reaper leaves it alone.
    server.app.clock.advance(server.app.settings.lease_seconds - 10);
    assert!(reaped(&run_job(&server.app, &JOB_LEASE_REAPER).await).is_empty());
    assert!(c.get(&stack).await.json().get("currentOperation").is_some());

    server.app.clock.advance(11);
    let report = run_job(&server.app, &JOB_LEASE_REAPER).await;
    assert_eq!(reaped(&report), vec![run.id.clone()], "{report}");
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), last, "last checkpoint kept");
    let h = c.get(&format!("{stack}/updates/1")).await.json();
    assert_eq!(h["info"]["result"], "failed");
    assert_eq!(h["info"]["resourceCount"], 12);
    assert_freed(&server, &stack, &run).await;
    server.stop().await;
}

/// A CLI killed mid-update in journal mode: the reaper replays the journal up to the last
/// acknowledged entry (the unfinished operation is recorded as pending).
pub async fn killed_journal_session_is_reaped(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let full = state("dev", 10);
    let base = c.get(&format!("{stack}/export")).await.json();
    let (run, journal) = session::create_and_start_journal(&c, &stack, "update").await;
    assert!(journal, "journaling is on");
    let mut entries = session::journal_between(&base, &full);
    // The process dies after beginning the last resource's creation.
    entries.pop();
    for batch in entries.chunks(7) {
        assert!(run.journal(&c, batch).await.status.is_success());
    }
    server.app.clock.advance(server.app.settings.lease_seconds + 1);
    let report = run_job(&server.app, &JOB_LEASE_REAPER).await;
    assert_eq!(reaped(&report), vec![run.id.clone()], "{report}");

    let export = c.get(&format!("{stack}/export")).await.json();
    let resources = export["deployment"]["resources"].as_array().expect("resources");
    assert_eq!(resources[..], full["deployment"]["resources"].as_array().expect("full")[..9]);
    let pending = export["deployment"]["pending_operations"].as_array().expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["type"], "creating");
    assert_eq!(pending[0]["resource"], full["deployment"]["resources"][9]);
    assert_freed(&server, &stack, &run).await;
    server.stop().await;
}

/// The reaper never takes a lease its CLI renews, even when it read the update before the
/// renewal (its finalize transaction fails on the revision and the re-read shows a live
/// lease), and when both happen at the last second.
pub async fn a_renewing_cli_keeps_its_lease(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let app = server.app.clone();
    let stack = new_stack(&server, "dev").await;
    let id = stack_id(&c, &stack).await;
    let run = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    assert!(run.checkpoint(&c, &state("dev", 3)).await.status.is_success());

    // A reaper's read from just before the renewal.
    let stale = updates::get(app.ports.meta.as_ref(), &id, &update_id(&run)).await.expect("update");
    // Seconds before expiry, counted from the stored expiry rather than from the start: the
    // clock is real time plus an offset, and a slow backend can cross a second boundary.
    app.clock.advance(stale.lease_expires - app.clock.now() - 3);
    assert!(run.renew(&c).await.status.is_success());
    app.clock.advance(4);
    assert!(!stale.is_live(app.clock.now()), "the stale copy looks expired");
    let ended = updates::finalize_expired(&app, stale).await.expect("finalize_expired");
    assert!(ended.is_none(), "the renewal wins: {ended:?}");
    let now = updates::get(app.ports.meta.as_ref(), &id, &update_id(&run)).await.expect("update");
    assert_eq!(now.status, Status::Running);
    let report = run_job(&app, &JOB_LEASE_REAPER).await;
    assert!(reaped(&report).is_empty(), "{report}");
    assert_eq!(report["live"], 1);
    assert!(run.renew(&c).await.status.is_success());

    // Renewals at the last second, concurrent with reaper runs.
    for _ in 0..4 {
        // A few seconds before expiry, from the stored expiry: a loaded machine can take more
        // than a second per request, and real time keeps running under the offset clock.
        let current =
            updates::get(app.ports.meta.as_ref(), &id, &update_id(&run)).await.expect("update");
        app.clock.advance(current.lease_expires - app.clock.now() - 5);
        let (renewed, report) = tokio::join!(run.renew(&c), run_job(&app, &JOB_LEASE_REAPER));
        assert!(renewed.status.is_success(), "{renewed:?}");
        assert!(reaped(&report).is_empty(), "{report}");
    }
    assert!(run.checkpoint(&c, &state("dev", 4)).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let h = c.get(&format!("{stack}/updates/1")).await.json();
    assert_eq!(h["info"]["result"], "succeeded");
    assert_eq!(h["info"]["resourceCount"], 4);
    server.stop().await;
}

/// Two reapers and the next `pulumi up` all find the same abandoned update: it ends once,
/// as failed; running the reaper again afterwards changes nothing.
pub async fn reaping_is_idempotent_and_races_a_start_cleanly(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let app = server.app.clone();
    let stack = new_stack(&server, "dev").await;
    let dead = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    assert!(dead.checkpoint(&c, &state("dev", 6)).await.status.is_success());
    app.clock.advance(app.settings.lease_seconds + 1);

    let (a, b, next) = tokio::join!(
        run_job(&app, &JOB_LEASE_REAPER),
        run_job(&app, &JOB_LEASE_REAPER),
        create_and_start(&c, &stack, "update", false),
    );
    let next = next.expect("the next update starts");
    assert!(reaped(&a).len() + reaped(&b).len() <= 1, "ended once: {a} {b}");
    assert_eq!(next.version, 2);
    assert!(next.checkpoint(&c, &state("dev", 7)).await.status.is_success());
    assert!(next.complete(&c, "succeeded").await.status.is_success());

    let snapshot = |h: Value, s: Value, e: Value| (h, s["version"].clone(), e);
    let before = snapshot(
        c.get(&format!("{stack}/updates")).await.json(),
        c.get(&stack).await.json(),
        c.get(&format!("{stack}/export")).await.json(),
    );
    let results: Vec<&str> = before.0["updates"]
        .as_array()
        .expect("updates")
        .iter()
        .map(|u| u["result"].as_str().expect("result"))
        .collect();
    assert_eq!(results, ["succeeded", "failed"]);
    assert_eq!(versions(&before.0), [2, 1]);
    assert_eq!(
        c.get(&format!("{stack}/export/1")).await.json()["deployment"]["resources"]
            .as_array()
            .map(Vec::len),
        Some(6)
    );

    app.clock.advance(app.settings.lease_seconds + 1);
    let again = run_job(&app, &JOB_LEASE_REAPER).await;
    assert!(reaped(&again).is_empty(), "{again}");
    assert_eq!(again["examined"], 0, "no running update is indexed: {again}");
    let after = snapshot(
        c.get(&format!("{stack}/updates")).await.json(),
        c.get(&stack).await.json(),
        c.get(&format!("{stack}/export")).await.json(),
    );
    assert_eq!(before, after, "a second run changes nothing");
    server.stop().await;
}

/// The emulator runs the reaper on its own timer (`STACKHOUSE_REAPER_INTERVAL_SECONDS`, here
/// through the runner's config): a killed session's stack frees itself.
pub async fn the_emulator_reaps_on_its_timer(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let mut cfg = local_emulator::jobs::RunnerConfig::default();
    cfg.intervals.insert(JOB_LEASE_REAPER.name, Duration::from_millis(200));
    cfg.intervals.insert(JOB_HISTORY_RETENTION.name, Duration::ZERO);
    let runner = local_emulator::jobs::start(server.app.clone(), &cfg);
    assert!(runner.summary.iter().any(|l| l.contains("disabled")), "{:?}", runner.summary);

    let stack = new_stack(&server, "dev").await;
    let dead = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    assert!(dead.checkpoint(&c, &state("dev", 2)).await.status.is_success());
    server.app.clock.advance(server.app.settings.lease_seconds + 1);
    let mut freed = false;
    for _ in 0..100 {
        if c.get(&stack).await.json()["activeUpdate"].as_str().unwrap_or_default().is_empty() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    runner.stop().await;
    assert!(freed, "the timer's reaper freed the stack");
    assert_freed(&server, &stack, &dead).await;
    // The operator sees the runs and what they did in the emulator's metrics.
    let page = String::from_utf8_lossy(&c.get("/metrics").await.body).into_owned();
    let value = |series: &str| -> u64 {
        page.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    let job = JOB_LEASE_REAPER.name;
    assert!(value(&format!("stackhouse_job_runs_total{{job=\"{job}\",outcome=\"ok\"}}")) >= 1);
    let reaped = format!("stackhouse_job_items_total{{job=\"{job}\",item=\"reaped\"}}");
    assert_eq!(value(&reaped), 1, "{page}");
    server.stop().await;
}

async fn blob_exists(app: &App, key: &str) -> bool {
    app.ports.blobs.get(key).await.expect("blob store").is_some()
}

async fn scratch_blobs(app: &App, update_id: &str) -> usize {
    let page = app.ports.blobs.list(&format!("updates/{update_id}/"), None).await.expect("list");
    page.keys.len()
}

/// `versions:2`: the two newest versions stay with their deployments and scratch blobs; older
/// ones lose their history item, deployment blob and scratch blobs; other stacks too.
pub async fn retention_keeps_the_newest_versions(target: Target) {
    let settings = Settings { history_retention: Policy::Versions(2), ..Settings::default() };
    let server = TestServer::start_with(target, settings).await;
    let c = server.client();
    let app = server.app.clone();
    let stack = new_stack(&server, "dev").await;
    let other = new_stack(&server, "other").await;
    let id = stack_id(&c, &stack).await;
    let mut runs = Vec::new();
    for n in 1..=4 {
        runs.push(update(&c, &stack, Some(&state("dev", n))).await);
    }
    update(&c, &other, Some(&state("other", 1))).await;
    update(&c, &other, Some(&state("other", 2))).await;
    update(&c, &other, Some(&state("other", 3))).await;
    assert!(blob_exists(&app, &version_key(&id, 1)).await);
    assert!(scratch_blobs(&app, &runs[0].id).await > 0);

    let report = run_job(&app, &JOB_HISTORY_RETENTION).await;
    assert_eq!(report["policy"], "versions:2");
    assert_eq!(report["versions_pruned"], 3, "{report}");
    assert_eq!(report["pass_complete"], true);
    assert_eq!(versions(&c.get(&format!("{stack}/updates")).await.json()), [4, 3]);
    assert_eq!(versions(&c.get(&format!("{other}/updates")).await.json()), [3, 2]);
    for v in [1, 2] {
        c.get(&format!("{stack}/export/{v}")).await.error_message(404);
        c.get(&format!("{stack}/updates/{v}")).await.error_message(404);
        assert!(!blob_exists(&app, &version_key(&id, v)).await, "blob of version {v}");
        assert_eq!(scratch_blobs(&app, &runs[v as usize - 1].id).await, 0);
    }
    for v in [3, 4] {
        let e = c.get(&format!("{stack}/export/{v}")).await.json();
        assert_eq!(e, state("dev", v as usize));
    }
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), state("dev", 4));
    // Nothing left to do.
    let again = run_job(&app, &JOB_HISTORY_RETENTION).await;
    assert_eq!(again["versions_pruned"], 0, "{again}");
    server.stop().await;
}

/// `days:1` prunes versions that ended over a day ago, but never the current version or its
/// deployment, even when the newest version reuses an older version's deployment blob.
pub async fn retention_by_age_never_drops_the_current_deployment(target: Target) {
    let settings = Settings { history_retention: Policy::Days(1), ..Settings::default() };
    let server = TestServer::start_with(target, settings).await;
    let c = server.client();
    let app = server.app.clone();
    let stack = new_stack(&server, "dev").await;
    let id = stack_id(&c, &stack).await;
    update(&c, &stack, Some(&state("dev", 1))).await;
    update(&c, &stack, Some(&state("dev", 2))).await;
    // Version 3 checkpoints nothing: it points at version 2's deployment blob.
    update(&c, &stack, None).await;
    let current = state("dev", 2);
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), current);

    app.clock.advance(3 * 86_400);
    let report = run_job(&app, &JOB_HISTORY_RETENTION).await;
    assert_eq!(report["versions_pruned"], 2, "{report}");
    assert_eq!(versions(&c.get(&format!("{stack}/updates")).await.json()), [3]);
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), current);
    assert_eq!(c.get(&format!("{stack}/export/3")).await.json(), current);
    assert!(!blob_exists(&app, &version_key(&id, 1)).await);
    assert!(blob_exists(&app, &version_key(&id, 2)).await, "the current deployment stays");

    // A later version, then everything ages again: only the current version remains.
    update(&c, &stack, Some(&state("dev", 5))).await;
    app.clock.advance(3 * 86_400);
    run_job(&app, &JOB_HISTORY_RETENTION).await;
    assert_eq!(versions(&c.get(&format!("{stack}/updates")).await.json()), [4]);
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), state("dev", 5));
    assert!(!blob_exists(&app, &version_key(&id, 2)).await);
    server.stop().await;
}

/// A run visits at most its budget of stacks and the next run continues where it stopped.
pub async fn retention_is_bounded_and_resumes(target: Target) {
    let settings = Settings { history_retention: Policy::Versions(1), ..Settings::default() };
    let server = TestServer::start_with(target, settings).await;
    let c = server.client();
    let app = server.app.clone();
    let names = ["a", "b", "c"];
    for name in names {
        let stack = new_stack(&server, name).await;
        update(&c, &stack, Some(&state(name, 1))).await;
        update(&c, &stack, Some(&state(name, 2))).await;
    }
    let one = Limits { stacks_per_run: 1, ended_per_run: 100 };
    let mut visited = Vec::new();
    let mut pruned = 0;
    // Runs until the pass completes: one stack per run (the last run may find none left).
    for _ in 0..=names.len() {
        let report = retention::run_with(&app, app.clock.now(), &one).await.expect("run");
        assert!(report.stacks_visited <= 1, "{report:?}");
        visited.push(report.stacks_visited);
        pruned += report.versions_pruned;
        if report.pass_complete {
            break;
        }
        if visited.len() < names.len() {
            // Not done yet: the stacks not visited still have both versions.
            let left: usize = names.len() - visited.len();
            let mut full = 0;
            for name in names {
                let path = format!("/api/stacks/{}/proj/{name}/updates", server.user);
                full += usize::from(versions(&c.get(&path).await.json()).len() == 2);
            }
            assert_eq!(full, left, "after {} runs", visited.len());
        }
    }
    assert_eq!(visited.iter().sum::<usize>(), names.len(), "{visited:?}");
    assert_eq!(pruned, names.len());
    for name in names {
        let h = c.get(&format!("/api/stacks/{}/proj/{name}/updates", server.user)).await.json();
        assert_eq!(versions(&h), [2], "{name}");
    }
    // The next run starts a new pass, with nothing left to prune.
    let report = retention::run_with(&app, app.clock.now(), &one).await.expect("run");
    assert_eq!((report.stacks_visited, report.versions_pruned), (1, 0), "{report:?}");
    server.stop().await;
}

fn gz_empty() -> Bytes {
    deployments::gzip(deployments::EMPTY.as_bytes()).expect("gzip")
}

/// Crash leftovers ("blob written, pointer never published") and the scratch blobs of ended
/// updates go once older than the grace period; fresh ones, in-flight versions and anything
/// referenced stay.
pub async fn orphans_older_than_the_grace_period_are_removed(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let app = server.app.clone();
    let grace = app.settings.orphan_grace_seconds;
    let stack = new_stack(&server, "dev").await;
    let id = stack_id(&c, &stack).await;
    let first = update(&c, &stack, Some(&state("dev", 3))).await;
    assert!(scratch_blobs(&app, &first.id).await > 0, "the checkpoint is scratch");

    // A finalize that crashed after writing version 2's blob; version 2 then published
    // nothing new (no checkpoint), so that blob is an orphan from now on.
    let old_orphan = version_key(&id, 2);
    app.ports.blobs.put(&old_orphan, gz_empty()).await.expect("put");
    update(&c, &stack, None).await;
    // A blob of a version the stack has not reached: maybe a publication in flight.
    let in_flight = version_key(&id, 9);
    app.ports.blobs.put(&in_flight, gz_empty()).await.expect("put");

    let report = run_job(&app, &JOB_HISTORY_RETENTION).await;
    assert_eq!(report["orphans_deleted"], 0, "nothing is old enough yet: {report}");
    assert!(blob_exists(&app, &old_orphan).await);

    app.clock.advance(grace + 60);
    let fresh_orphan = version_key(&id, 3);
    app.ports.blobs.put(&fresh_orphan, gz_empty()).await.expect("put");
    let last = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    let event =
        json!({"sequence": 1, "timestamp": 1, "stdoutEvent": {"message": "hi", "color": "raw"}});
    assert!(last.events(&c, &[event]).await.status.is_success());
    assert!(last.complete(&c, "succeeded").await.status.is_success());

    let report = run_job(&app, &JOB_HISTORY_RETENTION).await;
    assert_eq!(report["orphans_deleted"], 1, "{report}");
    assert!(!blob_exists(&app, &old_orphan).await, "the old orphan is gone");
    assert!(blob_exists(&app, &fresh_orphan).await, "the fresh orphan stays");
    assert!(blob_exists(&app, &in_flight).await, "a newer version's blob stays");
    assert!(blob_exists(&app, &version_key(&id, 1)).await, "the current deployment stays");
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), state("dev", 3));
    assert_eq!(versions(&c.get(&format!("{stack}/updates")).await.json()), [3, 2, 1]);
    assert_eq!(scratch_blobs(&app, &first.id).await, 0, "old scratch blobs are gone");
    assert!(scratch_blobs(&app, &last.id).await > 0, "fresh scratch blobs stay");
    let events = c.get(&format!("{}/events", last.path)).await;
    assert_eq!(events.status, 200);
    server.stop().await;
}

const PROCESSED: &str = "TEST#processed";

/// A test-only queue handler: fails every message whose body starts with `poison`, records
/// the others (idempotently) in the metadata store.
async fn poison_aware(app: Arc<App>, messages: Vec<Message>) -> Vec<String> {
    let mut failed = Vec::new();
    for m in messages {
        if m.body.starts_with("poison") {
            failed.push(m.id);
            continue;
        }
        let item = Item::new(PROCESSED, m.body.clone());
        if app.ports.meta.put(item, None).await.is_err() {
            failed.push(m.id);
        }
    }
    failed
}

/// A test-only job consuming the `jobs` queue.
pub static POISON_JOB: Job = Job {
    name: "job-test-poison",
    description: "fails poisoned messages",
    trigger: Trigger::Queue {
        queue: "jobs",
        batch_size: 10,
        run: stackhouse::batch!(poison_aware),
    },
    needs: Needs {
        meta: Access::Write,
        blobs: Access::None,
        queue: Access::Read,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    },
    timeout_seconds: 30,
};

async fn processed(app: &App) -> Vec<String> {
    let query =
        Query { pk: PROCESSED.into(), sk: SortKey::All, ascending: true, limit: 100, after: None };
    let page = app.ports.meta.query(query).await.expect("query");
    page.items.into_iter().map(|i| i.sk).collect()
}

/// The emulator's consumer of an empty queue waits for its next poll (an hour here), but a
/// message sent meanwhile wakes it (the queue's bell): the message is handled without waiting
/// for the poll, as Lambda's event source delivers SQS messages at once.
pub async fn a_sent_message_wakes_its_idle_consumer(target: Target) {
    let server = TestServer::start(target).await;
    let app = server.app.clone();
    let cfg = local_emulator::jobs::RunnerConfig {
        jobs: vec![&POISON_JOB],
        idle_poll: Duration::from_secs(3600),
        ..Default::default()
    };
    let runner = local_emulator::jobs::start(app.clone(), &cfg);
    let handled = |body: &'static str| {
        let app = app.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !processed(&app).await.iter().any(|b| b == body) {
                assert!(std::time::Instant::now() < deadline, "{body} was not handled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Twice: the second send finds the consumer idle after the poll that followed the first.
    for body in ["first", "second"] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.ports.queue.send("jobs", body, Duration::ZERO).await.expect("send");
        handled(body).await;
    }
    runner.stop().await;
    server.stop().await;
}

/// A poisoned message fails on every receive while the rest of its batch succeeds, then lands
/// in the dead-letter queue after `max_receives`; redriven, the emulator's consumer sends it
/// there again. The Lambda path reports the same partial batch failure.
pub async fn poisoned_messages_end_in_the_dlq_and_redrive(target: Target) {
    let server = TestServer::start(target).await;
    let app = server.app.clone();
    let q = app.ports.queue.as_ref();
    let max_receives =
        stackhouse::jobs::consumer::queue_spec("jobs").expect("jobs queue").max_receives;
    for body in ["good-1", "good-2", "poison-1", "good-3", "good-4"] {
        q.send("jobs", body, Duration::ZERO).await.expect("send");
    }
    let now = Backoff { base: Duration::ZERO, max: Duration::ZERO };
    let mut failures = 0;
    let mut idle = 0;
    for _ in 0..60 {
        let polled = poll_once(&app, &POISON_JOB, &now).await.expect("poll");
        assert!(polled.failed <= 1, "only the poisoned message fails: {polled:?}");
        failures += polled.failed;
        idle = if polled.received == 0 { idle + 1 } else { 0 };
        if idle == 3 {
            break;
        }
    }
    assert_eq!(processed(&app).await, ["good-1", "good-2", "good-3", "good-4"]);
    assert_eq!(failures, max_receives as usize, "tried max_receives times");
    let dead = dlq_list(q, "jobs", 10).await.expect("dlq list");
    let bodies: Vec<&str> = dead.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["poison-1"]);
    // Listing leaves it there.
    assert_eq!(dlq_list(q, "jobs", 10).await.expect("dlq list").len(), 1);

    // Redrive, and let the emulator's consumer take it (and a good message) from the queue.
    assert_eq!(dlq_redrive(q, "jobs", 10).await.expect("redrive"), 1);
    assert!(dlq_list(q, "jobs", 10).await.expect("dlq list").is_empty());
    q.send("jobs", "good-5", Duration::ZERO).await.expect("send");
    let cfg = local_emulator::jobs::RunnerConfig {
        jobs: vec![&POISON_JOB],
        idle_poll: Duration::from_millis(50),
        backoff: now,
        ..Default::default()
    };
    let runner = local_emulator::jobs::start(app.clone(), &cfg);
    let mut back = Vec::new();
    for _ in 0..100 {
        back = dlq_list(q, "jobs", 10).await.expect("dlq list");
        if !back.is_empty() && processed(&app).await.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    runner.stop().await;
    assert_eq!(back.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["poison-1"]);
    assert_eq!(processed(&app).await.len(), 5);

    // The Lambda path: an SQS event in, a partial batch response out.
    let event = json!({"Records": [
        {"messageId": "m-good", "receiptHandle": "r-1", "body": "good-6",
         "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs"},
        {"messageId": "m-bad", "receiptHandle": "r-2", "body": "poison-2",
         "attributes": {"ApproximateReceiveCount": "2"}, "eventSource": "aws:sqs"},
    ]});
    let response =
        stackhouse::jobs::invocation::handle(&app, &POISON_JOB, event).await.expect("batch runs");
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": "m-bad"}]}));
    assert!(processed(&app).await.contains(&"good-6".to_string()));
    server.stop().await;
}

// ---- incremental materialisation of journal-mode updates -------------------------------------

/// Entries per snapshot in these checks (the default is 1,000; a smaller one keeps them quick).
const EVERY: i64 = 100;

/// A synthetic deployment of stack `stack`: the root stack plus `Thing`s `r<from>..r<to>`, each
/// carrying `generation` (and a float that must survive every round trip).
fn things(stack: &str, from: usize, to: usize, generation: i64) -> Value {
    let root = format!("urn:pulumi:{stack}::proj::pulumi:pulumi:Stack::proj-{stack}");
    let mut resources = vec![json!({"urn": root, "custom": false, "type": "pulumi:pulumi:Stack"})];
    for i in from..to {
        resources.push(json!({
            "urn": format!("urn:pulumi:{stack}::proj::pkg:index:Thing::r{i}"),
            "custom": true, "type": "pkg:index:Thing", "id": format!("id-{i}"), "parent": root,
            "inputs": {"i": i, "generation": generation},
            "outputs": {"i": i, "generation": generation, "ratio": i as f64 / 7.0},
        }));
    }
    json!({"version": 3, "deployment": {
        "manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": "v3.200.0"},
        "metadata": {}, "resources": resources}})
}

/// What replaying `entries` in one go onto `base` (an export) gives, with `manifest` as the
/// manifest: the reference every snapshot-assisted replay must match exactly.
fn full_replay(base: &Value, entries: &[Value], manifest: &Value) -> Value {
    let entries: Vec<JournalEntry> =
        entries.iter().map(|e| serde_json::from_value(e.clone()).expect("entry")).collect();
    let mut r = Replayer::new(base["deployment"].clone()).expect("base");
    r.apply_owned(entries).expect("replay");
    let stackhouse::service::journal::Snapshot { version, features, deployment } =
        r.snapshot(manifest.clone()).expect("snapshot");
    let mut untyped = json!({"version": version, "deployment": deployment});
    if !features.is_empty() {
        untyped["features"] = json!(features);
    }
    untyped
}

/// The server's export compared with a full replay of the same journal (same manifest).
async fn assert_export_is_full_replay(c: &Client, stack: &str, base: &Value, entries: &[Value]) {
    let export = c.get(&format!("{stack}/export")).await.json();
    let expected = full_replay(base, entries, &export["deployment"]["manifest"]);
    assert!(export == expected, "export differs from a full replay");
}

/// A stack whose current deployment is `things(0..40)`, with a journal-mode update running that
/// turns it into `things(10..250)` (30 updates, 210 creates, 10 deletes): the base export, the
/// run and the journal.
async fn long_journal(server: &TestServer, stack: &str) -> (Value, Run, Vec<Value>) {
    let c = server.client();
    update(&c, stack, Some(&things("dev", 0, 40, 1))).await;
    let base = c.get(&format!("{stack}/export")).await.json();
    let (run, journal) = session::create_and_start_journal(&c, stack, "update").await;
    assert!(journal, "journaling is on");
    let entries = session::journal_between(&base, &things("dev", 10, 250, 2));
    assert!(entries.len() > 4 * EVERY as usize, "{}", entries.len());
    (base, run, entries)
}

/// Drains the materialise queue through the job's table entry, as Lambda or the emulator's
/// consumer would; returns how many messages it handled.
async fn materialise_queued(app: &Arc<App>) -> usize {
    let now = Backoff { base: Duration::ZERO, max: Duration::ZERO };
    let mut handled = 0;
    loop {
        let polled = poll_once(app, &JOB_UPDATE_MATERIALISE, &now).await.expect("poll");
        assert_eq!(polled.failed, 0, "materialise messages fail");
        if polled.received == 0 {
            return handled;
        }
        handled += polled.received;
    }
}

async fn snapshot_seq(app: &App, stack_id: &StackId, update: &str) -> i64 {
    let update = UpdateId::parse(update).expect("update id");
    updates::get(app.ports.meta.as_ref(), stack_id, &update).await.expect("update").snapshot_seq
}

async fn snapshot_blobs(app: &App, update_id: &str) -> Vec<String> {
    let prefix = format!("updates/{update_id}/snapshots/");
    app.ports.blobs.list(&prefix, None).await.expect("list").keys
}

fn materialising() -> Settings {
    Settings { materialise_every_entries: EVERY, ..Settings::default() }
}

/// A long journal-mode update gets snapshots from `job-update-materialise` while it runs (one
/// request per threshold crossing, only the newest blob kept), completes to exactly what a full
/// replay gives, and its snapshots go with its other scratch blobs once retention runs.
pub async fn long_journal_is_materialised_while_running(target: Target) {
    let server = TestServer::start_with(target, materialising()).await;
    let c = server.client();
    let app = server.app.clone();
    let stack = new_stack(&server, "dev").await;
    let id = stack_id(&c, &stack).await;
    let (base, run, entries) = long_journal(&server, &stack).await;

    let mut seen = Vec::new();
    let mut requests = 0;
    for batch in entries.chunks(30) {
        assert!(run.journal(&c, batch).await.status.is_success());
        requests += materialise_queued(&app).await;
        let seq = snapshot_seq(&app, &id, &run.id).await;
        if seen.last() != Some(&seq) {
            seen.push(seq);
        }
    }
    let crossings = entries.len() as i64 / EVERY;
    assert_eq!(requests as i64, crossings, "one request per crossing");
    // Each snapshot covers the batch that crossed (batches of 30 end past each multiple).
    assert_eq!(seen.len() as i64, crossings + 1, "snapshots while running: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let newest = *seen.last().expect("a snapshot");
    assert_eq!(snapshot_blobs(&app, &run.id).await, [snapshot_key(&run.id, newest)]);
    // Export still shows the last completed version while the update runs.
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), base);

    assert!(run.complete(&c, "succeeded").await.status.is_success());
    assert_export_is_full_replay(&c, &stack, &base, &entries).await;
    let h = c.get(&format!("{stack}/updates/2")).await.json();
    assert_eq!(h["info"]["result"], "succeeded");
    assert_eq!(h["info"]["resourceCount"], 241);
    // A late request for the ended update changes nothing.
    let late = Request { stack_id: id.clone(), update_id: update_id(&run), sequence: 10_000 };
    let outcome = materialise::materialise(&app, &late).await.expect("late request");
    assert_eq!(outcome, Outcome::NotApplicable);

    // Retention removes the snapshot with the update's other scratch blobs.
    app.clock.advance(app.settings.orphan_grace_seconds + 60);
    run_job(&app, &JOB_HISTORY_RETENTION).await;
    assert!(snapshot_blobs(&app, &run.id).await.is_empty(), "snapshots are scratch");
    assert_eq!(scratch_blobs(&app, &run.id).await, 0);
    assert_export_is_full_replay(&c, &stack, &base, &entries).await;
    server.stop().await;
}

/// A CLI killed in the middle of a long journal (batches arriving out of order, the last
/// operation begun but not finished): the reaper resumes from the newest snapshot and publishes
/// exactly what a full replay of the acknowledged entries gives. To prove it resumed, the
/// batches the snapshot covers are deleted first: a replay from the base could not succeed.
pub async fn killed_long_journal_is_reaped_from_its_snapshot(target: Target) {
    let server = TestServer::start_with(target, materialising()).await;
    let c = server.client();
    let app = server.app.clone();
    let stack = new_stack(&server, "dev").await;
    let id = stack_id(&c, &stack).await;
    let (base, run, mut entries) = long_journal(&server, &stack).await;
    entries.truncate(entries.len() - 41);
    assert_eq!(entries.last().expect("entries")["kind"], 0, "dies mid-operation");

    let batches: Vec<&[Value]> = entries.chunks(17).collect();
    for pair in batches.chunks(2) {
        // The CLI may deliver entries slightly out of order across batches.
        for batch in pair.iter().rev() {
            assert!(run.journal(&c, batch).await.status.is_success());
        }
        materialise_queued(&app).await;
    }
    let covered = snapshot_seq(&app, &id, &run.id).await;
    assert!(covered >= 3 * EVERY, "snapshots were taken: {covered}");
    assert!(covered < entries.len() as i64, "the tail is after the snapshot");
    let journal = app.ports.blobs.list(&format!("updates/{}/journal/", run.id), None).await;
    let mut removed = 0;
    for key in journal.expect("list").keys {
        let last: i64 = key
            .rsplit('-')
            .next()
            .and_then(|n| n.strip_suffix(".json.gz"))
            .and_then(|n| n.parse().ok())
            .expect("batch key");
        if last <= covered {
            app.ports.blobs.delete(&key).await.expect("delete");
            removed += 1;
        }
    }
    assert!(removed > 0);

    app.clock.advance(app.settings.lease_seconds + 1);
    let report = run_job(&app, &JOB_LEASE_REAPER).await;
    assert_eq!(reaped(&report), vec![run.id.clone()], "{report}");
    let export = c.get(&format!("{stack}/export")).await.json();
    let pending = export["deployment"]["pending_operations"].as_array().expect("pending");
    assert_eq!(pending.len(), 1, "the unfinished operation is pending");
    assert_export_is_full_replay(&c, &stack, &base, &entries).await;
    let h = c.get(&format!("{stack}/updates/2")).await.json();
    assert_eq!(h["info"]["result"], "failed");
    assert_freed(&server, &stack, &run).await;
    server.stop().await;
}

/// Duplicate, late and concurrent materialise requests never move the snapshot backwards, and
/// a completion after them gives the same deployment as one without snapshots.
pub async fn duplicate_and_late_materialise_messages_do_not_regress(target: Target) {
    let server = TestServer::start_with(target, materialising()).await;
    let c = server.client();
    let app = server.app.clone();
    let stack = new_stack(&server, "dev").await;
    let id = stack_id(&c, &stack).await;
    let (base, run, entries) = long_journal(&server, &stack).await;
    let request = |sequence| Request { stack_id: id.clone(), update_id: update_id(&run), sequence };
    let (first, rest) = entries.split_at(250);
    for batch in first.chunks(50) {
        assert!(run.journal(&c, batch).await.status.is_success());
    }
    // The queue holds the two crossings' requests; handle them directly instead.
    let written = materialise::materialise(&app, &request(200)).await.expect("materialise");
    assert_eq!(written, Outcome::Written(250));
    assert_eq!(materialise_queued(&app).await, 2, "queued ones are now duplicates");
    assert_eq!(snapshot_seq(&app, &id, &run.id).await, 250);

    for batch in rest.chunks(50) {
        assert!(run.journal(&c, batch).await.status.is_success());
    }
    let all = entries.len() as i64;
    // Two jobs racing for the same request, plus a late one for an older crossing.
    let (newest, older) = (request(all), request(100));
    let (a, b, late) = tokio::join!(
        materialise::materialise(&app, &newest),
        materialise::materialise(&app, &newest),
        materialise::materialise(&app, &older),
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert!(a == Outcome::Written(all) || b == Outcome::Written(all), "{a:?} {b:?}");
    assert_eq!(late.expect("late"), Outcome::UpToDate);
    assert_eq!(snapshot_seq(&app, &id, &run.id).await, all);
    // Redelivered requests afterwards, in any order.
    for seq in [100, all, 300, 200] {
        let outcome = materialise::materialise(&app, &request(seq)).await.expect("again");
        assert_eq!(outcome, Outcome::UpToDate, "{seq}");
    }
    materialise_queued(&app).await;
    assert_eq!(snapshot_seq(&app, &id, &run.id).await, all);
    assert_eq!(snapshot_blobs(&app, &run.id).await, [snapshot_key(&run.id, all)]);
    // A malformed message fails (and would end in the dead-letter queue).
    let bad = vec![Message {
        id: "m-1".into(),
        receipt: "r-1".into(),
        body: "not json".into(),
        receive_count: 1,
    }];
    assert_eq!(materialise::handle_batch(&app, bad).await, ["m-1"]);

    assert!(run.complete(&c, "succeeded").await.status.is_success());
    assert_export_is_full_replay(&c, &stack, &base, &entries).await;
    server.stop().await;
}
