//! The audit log over real HTTP: which calls are recorded (mutations, decryptions, refusals,
//! one summary per update), the Pulumi Cloud-shaped listing with its filters and continuation
//! tokens, the CSV export, and that no route can change the log. The `audit_tests!` macro runs
//! every check against one backend.

use serde_json::{json, Value};
use stackhouse::api::routes::ROUTES;

use crate::fixtures;
use crate::server::{apigw_event, invoke_lambda, Client, Target, TestServer};
use crate::session::create_and_start;

/// Expands to one `#[tokio::test]` per audit check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! audit_tests {
    ($target:expr) => {
        $crate::audit_tests!(@each $target;
            calls_and_updates_are_recorded,
            refused_calls_are_recorded_where_they_aimed,
            ended_updates_are_summarised_on_cancel_and_expiry,
            filters_and_continuation_tokens,
            csv_export_parses,
            only_admins_read_the_log,
            source_ip_comes_from_the_transport,
            every_mutating_route_writes_an_audit_entry
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::audit::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// No route edits or deletes audit entries: everything under `/auditlogs` is a read. Checked on
/// the route table itself, so a route added later cannot slip past it.
pub fn no_route_changes_the_log() {
    let writers: Vec<String> = ROUTES
        .iter()
        .filter(|r| r.path.contains("/auditlogs"))
        .filter(|r| !(r.method == http::Method::GET || r.method == http::Method::HEAD))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writers.is_empty(), "routes that could change the audit log: {writers:?}");
    assert!(
        ROUTES.iter().any(|r| r.path.ends_with("/auditlogs")),
        "the audit log listing route is missing"
    );
}

const PROJECT: &str = "proj";

/// One page of the organization's log (`query` without the leading `?`).
pub async fn page(c: &Client, org: &str, query: &str) -> Value {
    let r = c.get(&format!("/api/orgs/{org}/auditlogs?{query}")).await;
    assert_eq!(r.status, 200, "audit listing: {}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// Every entry of the organization's log, newest first, following continuation tokens.
pub async fn all_entries(c: &Client, org: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let q = match &token {
            Some(t) => format!("{query}&continuationToken={t}"),
            None => query.to_string(),
        };
        let v = page(c, org, &q).await;
        out.extend(v["auditLogEvents"].as_array().expect("auditLogEvents").iter().cloned());
        match v.get("continuationToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
    panic!("continuation tokens never ended");
}

fn events_named<'a>(entries: &'a [Value], event: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["event"] == event).collect()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["event"].as_str().expect("event")).collect()
}

/// The fixture deployment, retargeted to `stack` of project `proj`.
fn state_for(stack: &str) -> Value {
    let mut text = fixtures::untyped_deployment("checkpoint-v3").to_string();
    for old in ["urn:pulumi:foo::countdown::", "urn:pulumi:dev::countdown::"] {
        text = text.replace(old, &format!("urn:pulumi:{stack}::{PROJECT}::"));
    }
    serde_json::from_str(&text).expect("fixture")
}

fn stdout_event(seq: i64) -> Value {
    json!({"sequence": seq, "timestamp": 1, "stdoutEvent": {"message": "x", "color": "raw"}})
}

async fn new_stack(c: &Client, org: &str, name: &str) -> String {
    let r = c.post(&format!("/api/stacks/{org}/{PROJECT}"), &json!({"stackName": name})).await;
    assert_eq!(r.status, 200, "create stack: {r:?}");
    format!("/api/stacks/{org}/{PROJECT}/{name}")
}

/// Stack create, tag update, encrypt and decrypt, an update with its lease calls, and stack
/// delete are recorded with actor, token, source IP, route, path and status; reads are not;
/// the update's lease calls become one summary entry with their counts.
pub async fn calls_and_updates_are_recorded(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let before = server.app.clock.now();
    let stack = new_stack(&c, &org, "dev").await;
    let r = c.patch(&format!("{stack}/tags"), &json!({"pulumi:project": PROJECT})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let ct = c.post(&format!("{stack}/encrypt"), &json!({"plaintext": "aHVudGVyMg=="})).await;
    assert_eq!(ct.status, 200);
    let ciphertext = ct.json()["ciphertext"].clone();
    let r = c.post(&format!("{stack}/decrypt"), &json!({"ciphertext": ciphertext})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.get(&stack).await.status, 200);

    let run = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    assert!(run.events(&c, &[stdout_event(0)]).await.status.is_success());
    let state = state_for("dev");
    assert!(run.checkpoint(&c, &state).await.status.is_success());
    assert!(run.checkpoint(&c, &state).await.status.is_success());
    assert!(run.renew(&c).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    assert_eq!(c.delete(&format!("{stack}?force=true")).await.status, 204);

    let entries = all_entries(&c, &org, "").await;
    assert_eq!(
        actions(&entries),
        vec![
            "stack-delete",
            "update-ended",
            "update-start",
            "update-create",
            "stack-decrypt",
            "stack-encrypt",
            "stack-tags-update",
            "stack-create",
        ],
        "newest first, reads and lease calls not listed one by one: {entries:#?}"
    );
    let created = events_named(&entries, "stack-create")[0];
    assert_eq!(created["user"]["name"], org.as_str());
    assert_eq!(created["user"]["githubLogin"], org.as_str());
    assert_eq!(created["sourceIP"], "127.0.0.1", "the emulator records the TCP peer");
    assert!(!created["tokenID"].as_str().unwrap_or("").is_empty(), "{created}");
    assert!(created.get("tokenName").is_some(), "{created}");
    assert_eq!(created["resource"], format!("/api/stacks/{org}/{PROJECT}"));
    assert_eq!(created["status"], 200);
    let at = created["timestamp"].as_i64().expect("timestamp");
    assert!(at >= before && at <= server.app.clock.now() + 1, "timestamp {at} not now");
    assert_eq!(events_named(&entries, "stack-tags-update")[0]["status"], 204);
    assert_eq!(events_named(&entries, "stack-decrypt")[0]["resource"], format!("{stack}/decrypt"));

    let summary = events_named(&entries, "update-ended")[0];
    let text = summary["description"].as_str().expect("description");
    for part in [
        "succeeded",
        "update-complete",
        "update-checkpoint 2",
        "update-events-batch 1",
        "update-renew-lease 1",
        "total 5",
        run.id.as_str(),
    ] {
        assert!(text.contains(part), "summary lacks {part:?}: {text}");
    }
    assert_eq!(summary["user"]["name"], org.as_str());
    assert_eq!(summary["resource"], format!("{stack}/update/{}", run.id));
    server.stop().await;
}

/// Calls refused by authorization are recorded in the organization they aimed at (403 for a
/// non-member's create and read), with the intruder as actor; a probe of an organization that
/// does not exist (404) goes to the caller's own organizations.
pub async fn refused_calls_are_recorded_where_they_aimed(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let stack = new_stack(&c, &org, "dev").await;
    let mallory = server.other_user("mallory").await;
    // An outsider is answered as if the organization did not exist (404), and the attempt is
    // still recorded in the log of the organization it aimed at.
    let r = mallory.post(&format!("/api/stacks/{org}/{PROJECT}"), &json!({"stackName": "x"})).await;
    r.error_message(404);
    mallory.get(&stack).await.error_message(404);
    let r = mallory.get("/api/stacks/no-such-org/p/s").await;
    assert_eq!(r.status, 404, "{r:?}");

    let entries = all_entries(&c, &org, "").await;
    assert_eq!(actions(&entries), vec!["stack-get", "stack-create", "stack-create"]);
    assert_eq!(entries[0]["user"]["name"], "mallory");
    assert_eq!(entries[0]["status"], 404);
    assert_eq!(entries[0]["resource"], stack.as_str());
    assert_eq!(entries[1]["user"]["name"], "mallory");
    assert_eq!(entries[1]["status"], 404);
    assert_eq!(entries[2]["user"]["name"], org.as_str());
    let own = all_entries(&mallory, "mallory", "").await;
    assert_eq!(actions(&own), vec!["stack-get"], "the probe is recorded with the prober");
    assert_eq!(own[0]["resource"], "/api/stacks/no-such-org/p/s");
    server.stop().await;
}

/// A cancelled update and an abandoned one (lease lapsed, found by the next start) each get one
/// summary entry saying how they ended.
pub async fn ended_updates_are_summarised_on_cancel_and_expiry(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let stack = new_stack(&c, &org, "dev").await;
    let first = create_and_start(&c, &stack, "update", false).await.expect("first");
    let cancel = c.post(&format!("{stack}/update/{}/cancel", first.id), &json!(null)).await;
    assert!(cancel.status.is_success(), "{cancel:?}");
    let dead = create_and_start(&c, &stack, "update", false).await.expect("second");
    assert!(dead.renew(&c).await.status.is_success());
    server.app.clock.advance(server.app.settings.lease_seconds + 1);
    let next = create_and_start(&c, &stack, "update", false).await.expect("third");
    assert!(next.complete(&c, "succeeded").await.status.is_success());

    let entries = all_entries(&c, &org, "").await;
    let summaries = events_named(&entries, "update-ended");
    assert_eq!(summaries.len(), 3, "{entries:#?}");
    let text = |v: &Value| v["description"].as_str().unwrap_or_default().to_string();
    assert!(text(summaries[0]).contains(&next.id) && text(summaries[0]).contains("succeeded"));
    assert!(text(summaries[1]).contains(&dead.id), "{}", text(summaries[1]));
    assert!(text(summaries[1]).contains("lease expired"), "{}", text(summaries[1]));
    assert!(text(summaries[1]).contains("update-renew-lease 1"), "{}", text(summaries[1]));
    assert!(text(summaries[2]).contains(&first.id), "{}", text(summaries[2]));
    assert!(text(summaries[2]).contains("cancelled"), "{}", text(summaries[2]));
    assert!(text(summaries[2]).contains("update-cancel"), "{}", text(summaries[2]));
    assert_eq!(summaries[0]["sourceIP"], "127.0.0.1", "the completing client");
    assert_eq!(summaries[1]["sourceIP"], "", "nobody's address for an abandoned update");
    assert_eq!(summaries[2]["sourceIP"], "127.0.0.1", "the cancelling client");
    assert_eq!(events_named(&entries, "update-cancel").len(), 1, "the cancel call itself too");
    server.stop().await;
}

/// Pages follow each other without gaps or repeats, newest first; `startTime`/`endTime` cut by
/// second; malformed tokens and ranges get 400.
pub async fn filters_and_continuation_tokens(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let stack = new_stack(&c, &org, "dev").await;
    let early = server.app.clock.now();
    for i in 0..4 {
        let r = c.patch(&format!("{stack}/tags"), &json!({"n": i.to_string()})).await;
        assert_eq!(r.status, 204);
    }
    server.app.clock.advance(1000);
    let late = server.app.clock.now();
    for i in 0..3 {
        let r = c.patch(&format!("{stack}/tags"), &json!({"m": i.to_string()})).await;
        assert_eq!(r.status, 204);
    }

    let whole = all_entries(&c, &org, "pageSize=1000").await;
    assert_eq!(whole.len(), 8);
    let paged = all_entries(&c, &org, "pageSize=2").await;
    assert_eq!(paged, whole, "pages of 2 give the same entries in the same order");
    let times: Vec<i64> = whole.iter().map(|e| e["timestamp"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let first = page(&c, &org, "pageSize=3").await;
    assert_eq!(first["auditLogEvents"].as_array().unwrap().len(), 3);
    assert!(first["continuationToken"].is_string());

    let recent = all_entries(&c, &org, &format!("startTime={}", late)).await;
    assert_eq!(recent.len(), 3, "{recent:#?}");
    let old = all_entries(&c, &org, &format!("endTime={}", early + 500)).await;
    assert_eq!(old.len(), 5, "create and four tag updates: {old:#?}");
    let window =
        all_entries(&c, &org, &format!("startTime={}&endTime={}", early + 500, late + 10)).await;
    assert_eq!(window.len(), 3);
    let none = all_entries(&c, &org, &format!("startTime={}", late + 100)).await;
    assert!(none.is_empty());

    for bad in [
        "continuationToken=nope",
        "startTime=yesterday",
        "pageSize=0",
        "pageSize=100000",
        "startTime=20&endTime=10",
    ] {
        let r = c.get(&format!("/api/orgs/{org}/auditlogs?{bad}")).await;
        r.error_message(400);
    }
    server.stop().await;
}

/// Splits one CSV document (RFC 4180: quoted fields with doubled quotes, CRLF rows).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// The export is CSV with a header row and one row per entry of the same filter, in the same
/// order as the listing, quoting descriptions (which contain commas) correctly.
pub async fn csv_export_parses(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let stack = new_stack(&c, &org, "dev").await;
    for i in 0..3 {
        let r = c.patch(&format!("{stack}/tags"), &json!({"n": i.to_string()})).await;
        assert_eq!(r.status, 204);
    }
    let run = create_and_start(&c, &stack, "update", false).await.expect("update");
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let listed = all_entries(&c, &org, "").await;

    let r = c.get(&format!("/api/orgs/{org}/auditlogs/export")).await;
    assert_eq!(r.status, 200);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(ct.starts_with("text/csv"), "content type {ct}");
    let rows = parse_csv(std::str::from_utf8(&r.body).expect("utf-8"));
    assert_eq!(
        rows[0],
        vec![
            "timestamp",
            "sourceIP",
            "event",
            "description",
            "user",
            "tokenID",
            "tokenName",
            "resource",
            "status"
        ]
    );
    let body = &rows[1..];
    assert_eq!(body.len(), listed.len(), "{rows:#?}");
    for (row, entry) in body.iter().zip(&listed) {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[2], entry["event"].as_str().unwrap());
        assert_eq!(row[3], entry["description"].as_str().unwrap());
        assert_eq!(row[4], entry["user"]["name"].as_str().unwrap());
        assert_eq!(row[7], entry["resource"].as_str().unwrap_or(""));
        assert!(row[0].ends_with('Z') && row[0].contains('T'), "RFC 3339 time: {}", row[0]);
    }
    assert!(body.iter().any(|r| r[3].contains(',')), "a description with a comma survived");
    let none = c
        .get(&format!("/api/orgs/{org}/auditlogs/export?startTime={}", server.app.clock.now() + 99))
        .await;
    assert_eq!(parse_csv(std::str::from_utf8(&none.body).unwrap()).len(), 1, "header only");
    c.get(&format!("/api/orgs/{org}/auditlogs/export?format=cef")).await.error_message(400);
    server.stop().await;
}

/// Only organization admins read the log; everyone else is refused (and that is recorded).
pub async fn only_admins_read_the_log(target: Target) {
    no_route_changes_the_log();
    let server = TestServer::start(target).await;
    let org = server.user.clone();
    let mallory = server.other_user("mallory").await;
    mallory.get(&format!("/api/orgs/{org}/auditlogs")).await.error_message(404);
    mallory.get(&format!("/api/orgs/{org}/auditlogs/export")).await.error_message(404);
    server.client_with(None).get(&format!("/api/orgs/{org}/auditlogs")).await.error_message(401);
    let entries = all_entries(&server.client(), &org, "").await;
    assert_eq!(actions(&entries), vec!["org-auditlogs-export", "org-auditlogs-list"]);
    server.stop().await;
}

/// The source IP is the transport's view of the peer: the TCP peer in the emulator and API
/// Gateway's `requestContext.http.sourceIp` in Lambda, never the client's `X-Forwarded-For`.
pub async fn source_ip_comes_from_the_transport(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let stack = new_stack(&c, &org, "dev").await;
    let tags = json!({"pulumi:project": PROJECT}).to_string();
    let r = reqwest::Client::new()
        .patch(format!("{}{stack}/tags", server.base))
        .header("Authorization", format!("token {}", server.token))
        .header("Content-Type", "application/json")
        .header("X-Forwarded-For", "198.51.100.9")
        .body(tags.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 204);
    let route = &stackhouse::api::routes::STACK_TAGS_UPDATE;
    let auth = format!("token {}", server.token);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("x-forwarded-for", "198.51.100.9"),
    ];
    let event = apigw_event(route, &format!("{stack}/tags"), "", &headers, Some(tags.as_bytes()));
    let router = stackhouse_lambda::router(route).expect("router");
    let r = invoke_lambda(&router, &server.app, &event).await;
    assert_eq!(r.status, 204, "{r:?}");

    let entries = all_entries(&c, &org, "").await;
    let ips: Vec<&str> = events_named(&entries, "stack-tags-update")
        .iter()
        .map(|e| e["sourceIP"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ips, vec!["203.0.113.7", "127.0.0.1"], "Lambda's sourceIp, then the TCP peer");
    server.stop().await;
}

/// Generated from the route table: every route an access token may call that can change
/// something leaves an entry, both when an organization admin calls it (allowed, whatever the
/// handler then answers to a minimal body) and when an outsider does (refused). Routes without
/// `{org}` record into the caller's organizations.
pub async fn every_mutating_route_writes_an_audit_entry(target: Target) {
    use crate::access::{Caller, World};
    use stackhouse::api::{Auth, Permission};

    let server = TestServer::start(target).await;
    let world = World::build(&server, "audit").await;
    let outsider_home = "audit-outsider";
    let mutating: Vec<_> = ROUTES
        .iter()
        .copied()
        .filter(|r| r.auth() == Auth::User && r.permission() != Permission::Lease)
        .filter(|r| !(r.method == http::Method::GET || r.method == http::Method::HEAD))
        .collect();
    assert!(mutating.len() > 10, "the table has mutating routes");
    for route in &mutating {
        world.call(route, Caller::Outsider).await;
        world.call(route, Caller::OrgAdmin).await;
    }
    let admin = world.client(Caller::OrgAdmin);
    let in_org = all_entries(admin, &world.org, "pageSize=1000").await;
    let outsider = world.client(Caller::Outsider);
    let at_home = all_entries(outsider, outsider_home, "pageSize=1000").await;
    let mut missing = Vec::new();
    for route in &mutating {
        let by = |entries: &[Value], actor_is_admin: bool| {
            entries.iter().any(|e| {
                e["event"] == route.name
                    && (e["user"]["name"] == "audit-orgadmin") == actor_is_admin
            })
        };
        if !by(&in_org, true) {
            missing.push(format!("{} as the admin", route.name));
        }
        let outsider_log = if route.path.contains("{org}") { &in_org } else { &at_home };
        if !by(outsider_log, false) {
            missing.push(format!("{} as an outsider", route.name));
        }
    }
    assert!(missing.is_empty(), "calls without an audit entry: {missing:#?}");
    server.stop().await;
}
