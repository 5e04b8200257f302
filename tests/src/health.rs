//! `GET /api/health`: the shallow check answers without credentials or storage calls; the deep
//! check needs an operator's token, reports every port with its latency, and names the one that
//! is down (503) while the shallow check stays 200. `GET /metrics` (the emulator's Prometheus
//! text) counts requests per route and status class as they are made, and what each ended
//! update stored.

use std::sync::Arc;

use serde_json::{json, Value};
use stackhouse::app::Settings;

use crate::server::{Target, TestServer};

/// Runs every health test against a target.
#[macro_export]
macro_rules! health_tests {
    ($target:expr) => {
        $crate::health_tests!(@each $target;
            shallow_is_public_and_makes_no_storage_call,
            deep_needs_an_operator_and_reports_every_port,
            deep_names_the_port_that_is_down,
            metrics_move_as_requests_are_made,
            metrics_count_what_each_update_stored
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::health::$name(make(stringify!($name))).await;
            }
        )*
    };
}

const HEALTH: &str = "/api/health";
const DEEP: &str = "/api/health?deep=true";

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    let checks = report["checks"].as_array().map(Vec::as_slice).unwrap_or_default();
    checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name} check: {report}"))
}

pub async fn shallow_is_public_and_makes_no_storage_call(target: Target) {
    let (server, counters) = TestServer::start_counted(target, Settings::default()).await;
    let before = counters.snapshot();
    for client in [server.client_with(None), server.client()] {
        let r = client.get(HEALTH).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json(), json!({"status": "ok"}));
    }
    assert_eq!(counters.snapshot(), before, "the shallow check must not touch storage");
    server.stop().await;
}

pub async fn deep_needs_an_operator_and_reports_every_port(target: Target) {
    let server = TestServer::start(target).await;
    let admin = server.client();
    assert_eq!(server.client_with(None).get(DEEP).await.status, 401, "a token is required");
    assert_eq!(server.client_with(Some("pul-nonsense")).get(DEEP).await.status, 401);

    // A team token administers nothing: refused.
    let org = format!("/api/orgs/{}", server.user);
    let team = json!({"organization": server.user, "teamType": "pulumi", "name": "ops",
                      "displayName": "Operations", "description": "runs prod"});
    assert_eq!(admin.post(&format!("{org}/teams/pulumi"), &team).await.status, 200);
    let made = admin.post(&format!("{org}/teams/ops/tokens"), &json!({"name": "ci"})).await;
    assert_eq!(made.status, 200, "{made:?}");
    let team_token = made.json()["tokenValue"].as_str().expect("tokenValue").to_string();
    let refused = server.client_with(Some(&team_token)).get(DEEP).await;
    assert_eq!(refused.status, 403, "{refused:?}");

    let r = admin.get(DEEP).await;
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["status"], "ok", "{report}");
    for name in ["metadata", "blobs", "queue", "keys"] {
        let c = check(&report, name);
        assert_eq!(c["ok"], true, "{c}");
        assert!(c["latencyMs"].as_f64().is_some_and(|ms| ms >= 0.0), "{c}");
        assert!(c.get("error").is_none(), "{c}");
    }
    let queues: Vec<&str> = check(&report, "queue")["queues"]
        .as_array()
        .expect("queue depths")
        .iter()
        .filter_map(|q| q["queue"].as_str())
        .collect();
    assert!(queues.contains(&"jobs") && queues.contains(&"jobs-dlq"), "{queues:?}");
    let jobs = &check(&report, "queue")["queues"][0];
    assert_eq!(jobs, &json!({"queue": "jobs", "visible": 0, "inFlight": 0, "delayed": 0}));
    server.stop().await;
}

pub async fn deep_names_the_port_that_is_down(target: Target) {
    let server = TestServer::start_wrapped(target, Settings::default(), |mut ports| {
        ports.queue = Arc::new(crate::webhooks::DownQueue);
        ports
    })
    .await;
    let r = server.client().get(DEEP).await;
    assert_eq!(r.status, 503, "{r:?}");
    let report = r.json();
    assert_eq!(report["status"], "degraded", "{report}");
    let queue = check(&report, "queue");
    assert_eq!(queue["ok"], false, "{queue}");
    let error = queue["error"].as_str().unwrap_or_default();
    assert!(error.contains("down for the test"), "the failure line names the cause: {error}");
    for name in ["metadata", "blobs", "keys"] {
        assert_eq!(check(&report, name)["ok"], true, "{report}");
    }
    // The process itself is fine: the shallow check says so.
    assert_eq!(server.client_with(None).get(HEALTH).await.status, 200);
    server.stop().await;
}

/// The value of one sample line of a Prometheus text page, 0 when absent.
fn sample(page: &str, series: &str) -> u64 {
    page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
}

pub async fn metrics_move_as_requests_are_made(target: Target) {
    let server = TestServer::start(target).await;
    let admin = server.client();
    assert_eq!(server.client_with(None).get("/metrics").await.status, 401);
    let before = String::from_utf8_lossy(&admin.get("/metrics").await.body).into_owned();
    let ok = "stackhouse_requests_total{route=\"user-get\",class=\"2xx\"}";
    let refused = "stackhouse_requests_total{route=\"user-get\",class=\"4xx\"}";
    let timed = "stackhouse_request_duration_ms_count{route=\"user-get\"}";
    for _ in 0..3 {
        assert_eq!(admin.get("/api/user").await.status, 200);
    }
    assert_eq!(server.client_with(None).get("/api/user").await.status, 401);
    let r = admin.get("/metrics").await;
    assert_eq!(r.status, 200, "{r:?}");
    let content_type = r.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/plain; version=0.0.4"));
    let after = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(sample(&after, ok) - sample(&before, ok), 3, "{after}");
    assert_eq!(sample(&after, refused) - sample(&before, refused), 1, "{after}");
    assert_eq!(sample(&after, timed) - sample(&before, timed), 4, "{after}");
    // Queue depths are gauges read at scrape time: a message sent shows up as visible.
    let jobs = "stackhouse_queue_messages{queue=\"jobs\",state=\"visible\"}";
    let waiting = sample(&after, jobs);
    server.app.ports.queue.send("jobs", "{}", std::time::Duration::ZERO).await.expect("send");
    let page = String::from_utf8_lossy(&admin.get("/metrics").await.body).into_owned();
    assert_eq!(sample(&page, jobs), waiting + 1, "{page}");
    server.stop().await;
}

/// `n` resources of stack `dev` in project `proj`.
fn resources(n: usize) -> Value {
    let stack = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev";
    let mut resources = vec![json!({"urn": stack, "type": "pulumi:pulumi:Stack", "custom": false})];
    for i in 0..n {
        resources
            .push(json!({"urn": format!("urn:pulumi:dev::proj::t:i:R::r{i}"), "type": "t:i:R",
            "custom": true, "id": format!("id-{i}"), "outputs": {"i": i}, "parent": stack}));
    }
    json!({"version": 3, "deployment": {"manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""},
        "resources": resources}})
}

pub async fn metrics_count_what_each_update_stored(target: Target) {
    use crate::session;
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = format!("/api/stacks/{}/proj/dev", server.user);
    let r =
        c.post(&format!("/api/stacks/{}/proj", server.user), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let page = || async { String::from_utf8_lossy(&c.get("/metrics").await.body).into_owned() };
    let before = page().await;

    // A journal-mode update of 5 resources: 12 entries (begin and success of each resource,
    // and of the stack), one deployment published.
    let (run, journal) = session::create_and_start_journal(&c, &stack, "update").await;
    assert!(journal, "journaling is on");
    let entries = session::journal_between(&json!({}), &resources(5));
    for batch in entries.chunks(5) {
        assert!(run.journal(&c, batch).await.status.is_success());
    }
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    // A preview that fails.
    let preview = session::create_and_start(&c, &stack, "update", true).await.expect("preview");
    assert!(preview.complete(&c, "failed").await.status.is_success());

    let after = page().await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        moved("stackhouse_updates_ended_total{operation=\"update\",result=\"succeeded\"}"),
        1,
        "{after}"
    );
    assert_eq!(
        moved("stackhouse_updates_ended_total{operation=\"preview\",result=\"failed\"}"),
        1,
        "{after}"
    );
    let journaled = moved("stackhouse_update_journal_entries_total{operation=\"update\"}");
    assert_eq!(journaled, entries.len() as u64, "{after}");
    // The bytes are those of the version the update published, as stored.
    let id = c.get(&stack).await.json()["id"].as_str().expect("stack id").to_string();
    let key = stackhouse::service::deployments::version_key(&id, 1);
    let stored = server.app.ports.blobs.get(&key).await.expect("read").expect("version 1 stored");
    let bytes = moved("stackhouse_update_deployment_bytes_total{operation=\"update\"}");
    assert_eq!(bytes, stored.len() as u64, "{after}");
    assert_eq!(moved("stackhouse_update_deployment_bytes_total{operation=\"preview\"}"), 0);
    server.stop().await;
}
