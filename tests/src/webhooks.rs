//! Conformance checks of webhooks over the emulator: organization and stack hooks
//! (create, list, get, update, delete), payload URL validation and write-only, encrypted
//! secrets. The `webhooks_conformance_tests!` macro runs every check against one backend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use stackhouse::api::routes;
use stackhouse::app::Settings;
use stackhouse::jobs::consumer::{poll_once, Backoff};
use stackhouse::jobs::table::JOB_WEBHOOK_DELIVER;
use stackhouse::ports::queue::WEBHOOKS_QUEUE;
use stackhouse::ports::{Message, QueueError};
use stackhouse::service::webhook_deliveries::{self as deliveries, Outcome};
use stackhouse::service::webhooks::{self, Owner};

use crate::server::{apigw_event, invoke_lambda, Client, Target, TestServer};
use crate::session::create_and_start;

/// Expands to one `#[tokio::test]` per webhook check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! webhooks_conformance_tests {
    ($target:expr) => {
        $crate::webhooks_conformance_tests!(@each $target;
            org_hooks_crud,
            stack_hooks_crud_and_rename,
            payload_urls_are_validated,
            loopback_is_allowed_only_by_the_setting,
            secrets_are_sealed_and_never_returned,
            non_members_cannot_see_hooks,
            deliveries_are_signed_and_recorded,
            failures_are_retried_until_delivered,
            redelivered_messages_are_not_sent_twice,
            filtered_events_are_never_sent,
            loopback_is_refused_at_delivery,
            ping_deliveries_and_redeliver_routes,
            a_queue_outage_never_fails_the_call
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::webhooks::$name(make(stringify!($name))).await;
            }
        )*
    };
}

const SECRET: &str = "correct-horse-battery-staple";

fn hook_body(name: &str) -> Value {
    json!({
        "name": name,
        "displayName": "Deploys",
        "payloadUrl": "https://hooks.example.com/pulumi",
        "secret": SECRET,
        "format": "raw",
        "filters": ["update_succeeded", "stack_created"],
    })
}

fn assert_no_secret(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    assert!(!text.contains(SECRET), "a reply leaks the secret: {text}");
    assert!(!text.contains("\"secret\""), "a reply has a secret field: {text}");
}

async fn new_stack(server: &TestServer, c: &Client, name: &str) -> String {
    let r = c.post(&format!("/api/stacks/{}/proj", server.user), &json!({"stackName": name})).await;
    assert_eq!(r.status, 200, "create stack: {r:?}");
    format!("/api/stacks/{}/proj/{name}", server.user)
}

/// Organization hooks: create (defaults filled in), list, get, partial update, 409 on a
/// duplicate name, delete, 404 afterwards.
pub async fn org_hooks_crud(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let base = format!("/api/orgs/{org}/hooks");

    let r = c.post(&base, &hook_body("deploys")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_no_secret(&r.body);
    let v = r.json();
    assert_eq!(v["organizationName"], org.as_str());
    assert_eq!(v["name"], "deploys");
    assert_eq!(v["displayName"], "Deploys");
    assert_eq!(v["active"], true);
    assert_eq!(v["hasSecret"], true);
    assert!(v.get("stackName").is_none(), "{v}");

    // Without a name, one is generated; without a format, raw; active by default.
    let r = c.post(&base, &json!({"payloadUrl": "https://example.com/x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let generated = r.json();
    assert_eq!(
        (generated["format"].as_str(), generated["active"].as_bool()),
        (Some("raw"), Some(true))
    );
    assert_eq!(generated["hasSecret"], false);
    let gen_name = generated["name"].as_str().expect("name").to_string();
    assert!(!gen_name.is_empty());

    assert_eq!(c.post(&base, &hook_body("deploys")).await.status, 409);

    let r = c.get(&base).await;
    assert_eq!(r.status, 200);
    assert_no_secret(&r.body);
    let mut names: Vec<String> = r
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|h| h["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    let mut want = vec!["deploys".to_string(), gen_name.clone()];
    want.sort();
    assert_eq!(names, want);

    let r = c.get(&format!("{base}/deploys")).await;
    assert_eq!(r.status, 200);
    assert_no_secret(&r.body);
    assert_eq!(r.json()["filters"], json!(["update_succeeded", "stack_created"]));

    // Partial update: absent fields keep their value; "secret": "" removes the secret.
    let r = c
        .patch(
            &format!("{base}/deploys"),
            &json!({"active": false, "format": "slack", "secret": ""}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!((v["active"].as_bool(), v["format"].as_str()), (Some(false), Some("slack")));
    assert_eq!(v["hasSecret"], false);
    assert_eq!(v["payloadUrl"], "https://hooks.example.com/pulumi");
    assert_eq!(v["filters"], json!(["update_succeeded", "stack_created"]));
    assert_eq!(c.get(&format!("{base}/deploys")).await.json(), v);

    // Bad updates change nothing.
    for bad in [
        json!({"format": "ms_teams"}),
        json!({"filters": ["everything"]}),
        json!({"name": "renamed"}),
        json!({"organizationName": "someone-else"}),
    ] {
        let r = c.patch(&format!("{base}/deploys"), &bad).await;
        assert_eq!(r.status, 400, "{bad}: {r:?}");
    }
    assert_eq!(c.get(&format!("{base}/deploys")).await.json(), v);
    assert_eq!(c.patch(&format!("{base}/missing"), &json!({"active": true})).await.status, 404);

    assert_eq!(c.delete(&format!("{base}/deploys")).await.status, 204);
    assert_eq!(c.get(&format!("{base}/deploys")).await.status, 404);
    assert_eq!(c.delete(&format!("{base}/deploys")).await.status, 404);
    let left = c.get(&base).await.json();
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
    server.stop().await;
}

/// Stack hooks are separate from the organization's, follow the stack through a rename (they
/// hang off its immutable id) and need the stack to exist.
pub async fn stack_hooks_crud_and_rename(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let s = new_stack(&server, &c, "dev").await;
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &hook_body("org-wide")).await.status, 200);

    let mut body = hook_body("stack-hook");
    body["organizationName"] = json!(org);
    body["projectName"] = json!("proj");
    body["stackName"] = json!("dev");
    let r = c.post(&format!("{s}/hooks"), &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_no_secret(&r.body);
    let v = r.json();
    assert_eq!((v["projectName"].as_str(), v["stackName"].as_str()), (Some("proj"), Some("dev")));

    let mut wrong = hook_body("other");
    wrong["stackName"] = json!("prod");
    assert_eq!(c.post(&format!("{s}/hooks"), &wrong).await.status, 400);

    let listed = c.get(&format!("{s}/hooks")).await.json();
    let names: Vec<&str> =
        listed.as_array().expect("list").iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(names, ["stack-hook"], "stack hooks exclude the organization's");
    let listed = c.get(&format!("/api/orgs/{org}/hooks")).await.json();
    let names: Vec<&str> =
        listed.as_array().expect("list").iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(names, ["org-wide"], "organization hooks exclude the stacks'");

    // Renamed, the stack keeps its hooks under its new name.
    let r = c.post(&format!("{s}/rename"), &json!({"newName": "staging"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let renamed = format!("/api/stacks/{org}/proj/staging");
    let r = c.get(&format!("{renamed}/hooks/stack-hook")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["stackName"], "staging");
    assert_eq!(c.get(&format!("{s}/hooks")).await.status, 404, "the old name is gone");

    let r = c.patch(&format!("{renamed}/hooks/stack-hook"), &json!({"filters": []})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["filters"], json!([]));
    assert_eq!(c.delete(&format!("{renamed}/hooks/stack-hook")).await.status, 204);
    assert_eq!(c.get(&format!("{renamed}/hooks")).await.json(), json!([]));

    // A stack that does not exist has no hooks.
    let missing = format!("/api/stacks/{org}/proj/nope/hooks");
    assert_eq!(c.get(&missing).await.status, 404);
    assert_eq!(c.post(&missing, &hook_body("x")).await.status, 404);
    server.stop().await;
}

/// Only http(s) URLs, and no loopback, private or link-local targets by default.
pub async fn payload_urls_are_validated(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let base = format!("/api/orgs/{}/hooks", server.user);
    for url in [
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "not a url",
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0x7f000001/hook",
    ] {
        let r = c.post(&base, &json!({"name": "h", "payloadUrl": url})).await;
        assert_eq!(r.status, 400, "{url} must be refused: {r:?}");
    }
    assert_eq!(c.post(&base, &json!({"name": "h"})).await.status, 400, "payloadUrl is required");
    let r = c.post(&base, &json!({"name": "bad name!", "payloadUrl": "https://example.com"})).await;
    assert_eq!(r.status, 400);
    let r = c.post(&base, &json!({"name": "h", "payloadUrl": "https://example.com/ok"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Updates are checked too.
    let r = c.patch(&format!("{base}/h"), &json!({"payloadUrl": "http://127.0.0.1/"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(c.get(&base).await.json().as_array().map(Vec::len), Some(1));
    server.stop().await;
}

/// `Settings::webhook_allow_loopback` (STACKHOUSE_WEBHOOK_ALLOW_LOOPBACK=1) admits loopback
/// targets, for tests and local receivers; other schemes stay refused.
pub async fn loopback_is_allowed_only_by_the_setting(target: Target) {
    let settings = Settings { webhook_allow_loopback: true, ..Settings::default() };
    let server = TestServer::start_with(target, settings).await;
    let c = server.client();
    let base = format!("/api/orgs/{}/hooks", server.user);
    let r = c.post(&base, &json!({"name": "local", "payloadUrl": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.post(&base, &json!({"name": "ftp", "payloadUrl": "ftp://127.0.0.1/hook"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    server.stop().await;
}

/// The secret is stored sealed (not in plain text in the item) and opens again for delivery;
/// no reply ever carries it.
pub async fn secrets_are_sealed_and_never_returned(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let s = new_stack(&server, &c, "dev").await;
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &hook_body("o")).await.status, 200);
    assert_eq!(c.post(&format!("{s}/hooks"), &hook_body("s")).await.status, 200);

    let meta = server.app.ports.meta.as_ref();
    let stack = stackhouse::service::stacks::get(
        meta,
        &stackhouse::names::StackRef {
            org: stackhouse::names::OrgName::parse(&org).expect("org"),
            project: stackhouse::names::ProjectName::parse("proj").expect("project"),
            stack: stackhouse::names::StackName::parse("dev").expect("stack"),
        },
    )
    .await
    .expect("stack");
    let owners = [
        (Owner::Org { org: org.clone() }, "o"),
        (
            Owner::Stack {
                org: org.clone(),
                project: "proj".into(),
                stack: "dev".into(),
                stack_id: stack.id.clone(),
            },
            "s",
        ),
    ];
    for (owner, name) in &owners {
        let hook = webhooks::get(meta, owner, name).await.expect("hook");
        let sealed = hook.secret.clone().expect("a sealed secret");
        assert!(
            !sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret is stored in plain text"
        );
        let opened = webhooks::secret_of(&server.app, &hook).await.expect("open");
        assert_eq!(opened.as_deref(), Some(SECRET.as_bytes()));
    }
    // A stack hook's secret is sealed under its stack's data key, an organization hook's under
    // its own; a sealed secret does not open under another key.
    let stack_hook = webhooks::get(meta, &owners[1].0, "s").await.expect("hook");
    assert_eq!(stack.id, stack_hook.key_id.as_str());
    let mut org_hook = webhooks::get(meta, &owners[0].0, "o").await.expect("hook");
    assert!(org_hook.key_id.starts_with("orghook-"), "{}", org_hook.key_id);
    org_hook.secret = stack_hook.secret.clone();
    assert!(webhooks::secret_of(&server.app, &org_hook).await.is_err());

    for path in [
        format!("/api/orgs/{org}/hooks"),
        format!("/api/orgs/{org}/hooks/o"),
        format!("{s}/hooks"),
        format!("{s}/hooks/s"),
    ] {
        let r = c.get(&path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_no_secret(&r.body);
    }
    let r = c.patch(&format!("{s}/hooks/s"), &json!({"secret": "another-one"})).await;
    assert_eq!(r.status, 200);
    assert_no_secret(&r.body);
    assert!(!String::from_utf8_lossy(&r.body).contains("another-one"));
    server.stop().await;
}

/// Someone outside the organization can neither read nor change its hooks.
pub async fn non_members_cannot_see_hooks(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let s = new_stack(&server, &c, "dev").await;
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &hook_body("o")).await.status, 200);
    assert_eq!(c.post(&format!("{s}/hooks"), &hook_body("s")).await.status, 200);
    let mallory = server.other_user("mallory").await;
    for path in [format!("/api/orgs/{org}/hooks"), format!("{s}/hooks")] {
        let r = mallory.get(&path).await;
        assert!(r.status.is_client_error() && r.status != 400, "{path}: {r:?}");
        let r = mallory.post(&path, &hook_body("evil")).await;
        assert!(r.status.is_client_error() && r.status != 400, "{path}: {r:?}");
    }
    let r = mallory.delete(&format!("/api/orgs/{org}/hooks/o")).await;
    assert!(r.status.is_client_error(), "{r:?}");
    assert_eq!(c.get(&format!("/api/orgs/{org}/hooks/o")).await.status, 200);
    assert_eq!(c.get(&format!("{s}/hooks/s")).await.status, 200);
    server.stop().await;
}

// ----------------------------------------------------------------------------------------
// Deliveries: a local receiver, the queue consumer run by hand.
// ----------------------------------------------------------------------------------------

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Lower-case header names and their values.
    pub headers: std::collections::HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A local HTTP receiver on 127.0.0.1 answering with scripted statuses (then 200), after an
/// optional delay, recording every request.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start(statuses: Vec<u16>, delay: Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(statuses)));
        let (g, sc) = (got.clone(), script.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (g, sc) = (g.clone(), sc.clone());
                tokio::spawn(async move {
                    let _ = serve_one(sock, g, sc, delay).await;
                });
            }
        });
        Receiver { url: format!("http://{addr}/hook"), got, task }
    }

    /// What it got so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    mut sock: tokio::net::TcpStream,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<std::collections::VecDeque<u16>>>,
    delay: Duration,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut headers = std::collections::HashMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..(head_end + len).min(buf.len())].to_vec();
    got.lock().expect("lock").push(Received { headers, body });
    tokio::time::sleep(delay).await;
    let status = script.lock().expect("lock").pop_front().unwrap_or(200);
    let text = format!("status {status}");
    let resp = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

fn loopback() -> Settings {
    Settings { webhook_allow_loopback: true, ..Settings::default() }
}

/// Retries become visible again at once.
const NOW: Backoff = Backoff { base: Duration::ZERO, max: Duration::ZERO };

async fn drain(server: &TestServer) -> (usize, usize) {
    let (mut received, mut failed) = (0, 0);
    loop {
        let p = poll_once(&server.app, &JOB_WEBHOOK_DELIVER, &NOW).await.expect("poll");
        if p.received == 0 {
            return (received, failed);
        }
        received += p.received;
        failed += p.failed;
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn org_owner(server: &TestServer) -> Owner {
    Owner::Org { org: server.user.clone() }
}

/// Stack and update events reach an organization hook, signed with its secret, with Pulumi's
/// headers and payload shapes; every attempt is recorded under the hook.
pub async fn deliveries_are_signed_and_recorded(target: Target) {
    let server = TestServer::start_with(target, loopback()).await;
    let rx = Receiver::start(vec![], Duration::ZERO).await;
    let c = server.client();
    let org = server.user.clone();
    let mut body = hook_body("all");
    body["payloadUrl"] = json!(rx.url);
    body["filters"] = json!([]);
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &body).await.status, 200);
    let s = new_stack(&server, &c, "dev").await;
    let run = create_and_start(&c, &s, "update", false).await.expect("update starts");
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let (received, failed) = drain(&server).await;
    if failed > 0 {
        let d = deliveries::list(server.app.ports.meta.as_ref(), &org_owner(&server), "all").await;
        panic!("{failed} of {received} failed: {d:?}");
    }
    assert_eq!(received, 3);

    let got = rx.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let mut kinds = Vec::new();
    for r in &got {
        let sig = r.headers.get("pulumi-webhook-signature").expect("signature");
        assert_eq!(sig, &sign(SECRET, &r.body), "signature of {:?}", r.headers);
        assert!(r.headers.get("pulumi-webhook-id").is_some_and(|id| !id.is_empty()));
        let v: Value = serde_json::from_slice(&r.body).expect("JSON body");
        assert_eq!(v["stackName"], "dev");
        assert_eq!(v["projectName"], "proj");
        assert_eq!(v["organization"]["githubLogin"], org.as_str());
        let kind = r.headers.get("pulumi-webhook-kind").cloned().unwrap_or_default();
        kinds.push((kind, v["action"].clone(), v["kind"].clone(), v["result"].clone()));
    }
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        vec![
            ("stack".to_string(), json!("created"), Value::Null, Value::Null),
            ("stack_update".to_string(), Value::Null, json!("update"), json!("started")),
            ("stack_update".to_string(), Value::Null, json!("update"), json!("succeeded")),
        ]
    );
    let deliveries = deliveries::list(server.app.ports.meta.as_ref(), &org_owner(&server), "all")
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 3);
    for d in &deliveries {
        assert!(d.delivered, "{d:?}");
        assert_eq!(d.attempts.len(), 1);
        assert_eq!(d.attempts[0].status, Some(200));
        assert_eq!(d.attempts[0].response_excerpt, "status 200");
    }

    // Slack format: {"text": …}, no other fields.
    let r = c.patch(&format!("/api/orgs/{org}/hooks/all"), &json!({"format": "slack"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(c.delete(&format!("{s}?force=true")).await.status, 204);
    assert_eq!(drain(&server).await, (1, 0));
    let last = rx.received().pop().expect("a slack delivery");
    let v: Value = serde_json::from_slice(&last.body).expect("json");
    let text = v["text"].as_str().expect("text").to_string();
    assert!(text.contains("deleted") && text.contains("proj/dev"), "{text}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
    server.stop().await;
}

/// A 500 fails the message; the retry succeeds; both attempts are recorded; nothing more is
/// sent afterwards.
pub async fn failures_are_retried_until_delivered(target: Target) {
    let server = TestServer::start_with(target, loopback()).await;
    let rx = Receiver::start(vec![500, 503], Duration::ZERO).await;
    let c = server.client();
    let s = new_stack(&server, &c, "dev").await;
    let mut body = hook_body("flaky");
    body["payloadUrl"] = json!(rx.url);
    body["filters"] = json!(["update_started"]);
    assert_eq!(c.post(&format!("{s}/hooks"), &body).await.status, 200);
    let _run = create_and_start(&c, &s, "update", false).await.expect("update starts");

    let p = poll_once(&server.app, &JOB_WEBHOOK_DELIVER, &NOW).await.expect("poll");
    assert_eq!((p.received, p.failed), (1, 1));
    let p = poll_once(&server.app, &JOB_WEBHOOK_DELIVER, &NOW).await.expect("poll");
    assert_eq!((p.received, p.failed), (1, 1));
    let p = poll_once(&server.app, &JOB_WEBHOOK_DELIVER, &NOW).await.expect("poll");
    assert_eq!((p.received, p.failed), (1, 0));
    assert_eq!(drain(&server).await, (0, 0));
    let got = rx.received();
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got.iter().filter_map(|r| r.headers.get("pulumi-webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one delivery id across retries: {ids:?}");

    let stack = stack_owner(&server, "dev").await;
    let d = deliveries::list(server.app.ports.meta.as_ref(), &stack, "flaky").await.expect("list");
    assert_eq!(d.len(), 1);
    let statuses: Vec<Option<u16>> = d[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert!(d[0].delivered);
    assert!(d[0].attempts[0].error.as_deref().is_some_and(|e| e.contains("500")));
    assert_eq!(d[0].attempts[0].response_excerpt, "status 500");
    // The operator sees the same in the metrics: two failed attempts, one delivered.
    let page = server.app.metrics.prometheus();
    for line in [
        "stackhouse_webhook_deliveries_total{outcome=\"failed\"} 2",
        "stackhouse_webhook_deliveries_total{outcome=\"delivered\"} 1",
    ] {
        assert!(page.lines().any(|l| l == line), "missing {line:?} in\n{page}");
    }
    server.stop().await;
}

async fn stack_owner(server: &TestServer, stack: &str) -> Owner {
    let r = stackhouse::names::StackRef {
        org: stackhouse::names::OrgName::parse(&server.user).expect("org"),
        project: stackhouse::names::ProjectName::parse("proj").expect("project"),
        stack: stackhouse::names::StackName::parse(stack).expect("stack"),
    };
    let st =
        stackhouse::service::stacks::get(server.app.ports.meta.as_ref(), &r).await.expect("stack");
    Owner::Stack { org: st.org, project: st.project, stack: st.stack, stack_id: st.id }
}

/// The same delivery received twice (SQS redelivers, or two consumers race on it) is POSTed
/// once: a concurrent copy backs off while the first attempt holds it, a later copy sees it
/// delivered.
pub async fn redelivered_messages_are_not_sent_twice(target: Target) {
    let server = TestServer::start_with(target, loopback()).await;
    let rx = Receiver::start(vec![], Duration::from_millis(500)).await;
    let c = server.client();
    let org = server.user.clone();
    let mut body = hook_body("once");
    body["payloadUrl"] = json!(rx.url);
    body["filters"] = json!(["stack_created"]);
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &body).await.status, 200);
    new_stack(&server, &c, "dev").await;

    let q = server.app.ports.queue.as_ref();
    let msgs = q.receive(WEBHOOKS_QUEUE, 10, Duration::from_secs(60)).await.expect("receive");
    assert_eq!(msgs.len(), 1);
    let msg = msgs[0].clone();
    q.ack(WEBHOOKS_QUEUE, &msg.receipt).await.expect("ack");
    // Two consumers at once.
    let (a, b) = tokio::join!(
        deliveries::deliver(&server.app, &msg.body),
        deliveries::deliver(&server.app, &msg.body)
    );
    let mut outcomes = vec![a.expect("first"), b.expect("second")];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [Outcome::Busy, Outcome::Delivered]);
    // Later redeliveries of the same message, through the queue.
    q.send(WEBHOOKS_QUEUE, &msg.body, Duration::ZERO).await.expect("send");
    q.send(WEBHOOKS_QUEUE, &msg.body, Duration::ZERO).await.expect("send");
    assert_eq!(drain(&server).await, (2, 0));
    assert_eq!(rx.received().len(), 1, "the receiver got the delivery exactly once");
    let d = deliveries::list(server.app.ports.meta.as_ref(), &org_owner(&server), "once")
        .await
        .expect("list");
    assert_eq!((d.len(), d[0].attempts.len()), (1, 1));
    server.stop().await;
}

/// Events a hook filtered out, and events while it is inactive, are never queued nor sent;
/// hooks of other stacks get nothing either.
pub async fn filtered_events_are_never_sent(target: Target) {
    let server = TestServer::start_with(target, loopback()).await;
    let rx = Receiver::start(vec![], Duration::ZERO).await;
    let c = server.client();
    let org = server.user.clone();
    let mut body = hook_body("only-destroys");
    body["payloadUrl"] = json!(rx.url);
    body["filters"] = json!(["destroy_succeeded"]);
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &body).await.status, 200);
    let s = new_stack(&server, &c, "dev").await;
    let other = new_stack(&server, &c, "other").await;
    let mut stack_hook = hook_body("other-stack");
    stack_hook["payloadUrl"] = json!(rx.url);
    stack_hook["filters"] = json!([]);
    assert_eq!(c.post(&format!("{other}/hooks"), &stack_hook).await.status, 200);
    let mut inactive = hook_body("inactive");
    inactive["payloadUrl"] = json!(rx.url);
    inactive["active"] = json!(false);
    inactive["filters"] = json!([]);
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &inactive).await.status, 200);

    for kind in ["update", "preview", "refresh"] {
        let run = create_and_start(&c, &s, kind, kind == "preview").await.expect("starts");
        assert!(run.complete(&c, "succeeded").await.status.is_success());
    }
    assert_eq!(c.delete(&format!("{s}?force=true")).await.status, 204);
    assert_eq!(drain(&server).await, (0, 0), "nothing was even queued");
    assert!(rx.received().is_empty());

    // The event it asked for does arrive, and only to it.
    let run = create_and_start(&c, &other, "destroy", false).await.expect("destroy starts");
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    // only-destroys: destroy_succeeded; other-stack: destroy_started + destroy_succeeded.
    assert_eq!(drain(&server).await, (3, 0));
    let kinds: Vec<String> = rx
        .received()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).expect("json");
            format!("{}_{}", v["kind"].as_str().unwrap_or(""), v["result"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "destroy_succeeded").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "destroy_started").count(), 1, "{kinds:?}");
    server.stop().await;
}

/// Without the allowance, a hook that points at a loopback address anyway (stored before the
/// policy changed) is refused at delivery time: nothing is sent, the attempt says why.
pub async fn loopback_is_refused_at_delivery(target: Target) {
    let server = TestServer::start(target).await;
    let rx = Receiver::start(vec![], Duration::ZERO).await;
    let c = server.client();
    let org = server.user.clone();
    let mut body = hook_body("sneaky");
    body["payloadUrl"] = json!(rx.url);
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &body).await.status, 400);
    // Store it behind the API's back.
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &hook_body("sneaky")).await.status, 200);
    let meta = server.app.ports.meta.as_ref();
    let pk = format!("HOOKS#{org}");
    let mut item = meta.get(&pk, "ORG#sneaky").await.expect("get").expect("hook item");
    item.set("payload_url", stackhouse::ports::Value::S(rx.url.clone()));
    item.set("filters", stackhouse::ports::Value::S("[]".into()));
    meta.put(item, None).await.expect("put");

    new_stack(&server, &c, "dev").await;
    // Every attempt fails; after the queue's max_receives the message is dead-lettered.
    let max = stackhouse::jobs::consumer::queue_spec(WEBHOOKS_QUEUE).expect("spec").max_receives;
    let max = usize::try_from(max).expect("small");
    assert_eq!(drain(&server).await, (max, max));
    assert!(rx.received().is_empty(), "nothing reached the loopback receiver");
    let d = deliveries::list(meta, &org_owner(&server), "sneaky").await.expect("list");
    assert_eq!(d[0].attempts.len(), max);
    let err = d[0].attempts[0].error.clone().unwrap_or_default();
    assert!(err.contains("internal address"), "{err}");
    assert!(!d[0].delivered);
    let dead =
        stackhouse::jobs::consumer::dlq_list(server.app.ports.queue.as_ref(), WEBHOOKS_QUEUE, 10)
            .await
            .expect("dlq");
    assert_eq!(dead.len(), 1, "the delivery ends in the dead-letter queue");
    server.stop().await;
}

/// The ping, deliveries and redeliver routes: a ping goes out at once (even while the hook is
/// inactive) and is listed; a redelivery is a new delivery through the queue, sent again.
pub async fn ping_deliveries_and_redeliver_routes(target: Target) {
    let server = TestServer::start_with(target, loopback()).await;
    let rx = Receiver::start(vec![], Duration::ZERO).await;
    let c = server.client();
    let s = new_stack(&server, &c, "dev").await;
    let mut body = hook_body("pinged");
    body["payloadUrl"] = json!(rx.url);
    body["active"] = json!(false);
    assert_eq!(c.post(&format!("{s}/hooks"), &body).await.status, 200);
    let base = format!("{s}/hooks/pinged");

    let r = c.post(&format!("{base}/ping"), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_no_secret(&r.body);
    let ping = r.json();
    assert_eq!((ping["event"].as_str(), ping["kind"].as_str()), (Some("ping"), Some("ping")));
    assert_eq!(ping["delivered"], true, "{ping}");
    assert_eq!(ping["attempts"][0]["status"], 200);
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers.get("pulumi-webhook-kind").map(String::as_str), Some("ping"));
    assert_eq!(got[0].headers.get("pulumi-webhook-signature"), Some(&sign(SECRET, &got[0].body)));

    let r = c.get(&format!("{base}/deliveries")).await;
    assert_eq!(r.status, 200);
    assert_no_secret(&r.body);
    let listed = r.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], ping["id"]);

    let id = ping["id"].as_str().expect("id");
    let r = c.post(&format!("{base}/deliveries/{id}/redeliver"), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let again = r.json();
    assert_ne!(again["id"], ping["id"]);
    assert_eq!(drain(&server).await, (1, 0));
    assert_eq!(rx.received().len(), 2, "the redelivery was sent");
    let listed = c.get(&format!("{base}/deliveries")).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert_eq!(listed[0]["id"], again["id"], "newest first");
    assert_eq!(listed[0]["delivered"], true);

    let missing = format!("{base}/deliveries/0000000000-000000000000/redeliver");
    assert_eq!(c.post(&missing, &json!({})).await.status, 404);
    assert_eq!(c.get(&format!("{s}/hooks/nope/deliveries")).await.status, 404);
    assert_eq!(c.post(&format!("{s}/hooks/nope/ping"), &json!({})).await.status, 404);
    server.stop().await;
}

/// A queue that is down.
pub struct DownQueue;

#[async_trait::async_trait]
impl stackhouse::ports::Queue for DownQueue {
    async fn send(&self, _: &str, _: &str, _: Duration) -> Result<String, QueueError> {
        Err(QueueError::Unavailable("down for the test".into()))
    }
    async fn receive(&self, _: &str, _: usize, _: Duration) -> Result<Vec<Message>, QueueError> {
        Err(QueueError::Unavailable("down for the test".into()))
    }
    async fn ack(&self, _: &str, _: &str) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("down for the test".into()))
    }
    async fn set_visibility(&self, _: &str, _: &str, _: Duration) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("down for the test".into()))
    }
    async fn depth(&self, _: &str) -> Result<stackhouse::ports::QueueDepth, QueueError> {
        Err(QueueError::Unavailable("down for the test".into()))
    }
}

/// With hooks to notify and the queue down, stack creation, updates and deletion still
/// succeed (the lost deliveries are logged).
pub async fn a_queue_outage_never_fails_the_call(target: Target) {
    let server = TestServer::start_with(target, loopback()).await;
    let c = server.client();
    let org = server.user.clone();
    let mut body = hook_body("all");
    body["filters"] = json!([]);
    assert_eq!(c.post(&format!("/api/orgs/{org}/hooks"), &body).await.status, 200);
    let p = &server.app.ports;
    let down = stackhouse::App::new(
        stackhouse::ports::Ports {
            meta: p.meta.clone(),
            blobs: p.blobs.clone(),
            queue: Arc::new(DownQueue),
            keys: p.keys.clone(),
            push: p.push.clone(),
            external: p.external.clone(),
        },
        server.app.settings.clone(),
    );
    let auth = format!("token {}", server.token);
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let call = |route: &'static stackhouse::api::Route, path: String, body: Option<Value>| {
        let down = down.clone();
        let event = apigw_event(
            route,
            &path,
            "force=true",
            &headers,
            body.map(|b| b.to_string().into_bytes()).as_deref(),
        );
        async move {
            let router = stackhouse_lambda::router(route).expect("router");
            invoke_lambda(&router, &down, &event).await
        }
    };
    let r = call(
        &routes::STACK_CREATE,
        format!("/api/stacks/{org}/proj"),
        Some(json!({"stackName": "dev"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let s = format!("/api/stacks/{org}/proj/dev");
    let ended = stackhouse::service::updates::import(
        &down,
        &stack_ref(&org, "dev"),
        &org,
        br#"{"version":3,"deployment":{"manifest":{"time":"2025-01-01T00:00:00Z","magic":"","version":""},"resources":[]}}"#,
    )
    .await;
    assert!(ended.is_ok(), "{ended:?}");
    let r = call(&routes::STACK_DELETE, s.clone(), None).await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.get(&s).await.status, 404);
    server.stop().await;
}

fn stack_ref(org: &str, stack: &str) -> stackhouse::names::StackRef {
    stackhouse::names::StackRef {
        org: stackhouse::names::OrgName::parse(org).expect("org"),
        project: stackhouse::names::ProjectName::parse("proj").expect("project"),
        stack: stackhouse::names::StackName::parse(stack).expect("stack"),
    }
}
