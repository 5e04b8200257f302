//! Crash safety, made systematic: ports that fail at the K-th storage write, as a function
//! that crashes there would, and a harness that walks K over every write of an update path.
//!
//! A [`Fault`] counts the writes (puts, deletes, transactions, queue sends) made through the
//! wrapped ports. At write number K it either fails before the write (`Before`) or performs it
//! and then fails (`After`: the crash between the write and the response); from then on every
//! call fails, reads too, as nothing of a dead process answers. [`Fault::restart`] brings the
//! process back on the same storage. The harness then lets the lease lapse, runs the reaper,
//! and checks that every write the client got a 2xx for is still there and the stack is usable.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::Method;
use serde_json::{json, Value};
use stackhouse::app::Settings;
use stackhouse::ports::blob::{BlobError, BlobList, ResponseHeaders};
use stackhouse::ports::queue::QueueDepth;
use stackhouse::ports::{
    BlobStore, Condition, Item, Message, MetaError, MetadataStore, Page, Ports, Query, Queue,
    QueueError, TransactOp, Update,
};

use crate::server::{Client, Target, TestServer};
use crate::session;

/// Where the injected crash happens relative to the K-th write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The write never happens.
    Before,
    /// The write happens; the caller is told it failed.
    After,
}

/// The crash switch shared by the wrapped ports.
#[derive(Debug)]
pub struct Fault {
    writes: AtomicUsize,
    fail_at: AtomicUsize,
    after: AtomicBool,
    dead: AtomicBool,
}

impl Fault {
    /// A switch that fails nothing until armed.
    pub fn new() -> Arc<Fault> {
        Arc::new(Fault {
            writes: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(usize::MAX),
            after: AtomicBool::new(false),
            dead: AtomicBool::new(false),
        })
    }

    /// Crashes at the `k`-th write from now (0 = the next one).
    pub fn arm(&self, k: usize, when: When) {
        self.after.store(when == When::After, Ordering::SeqCst);
        self.fail_at.store(self.writes.load(Ordering::SeqCst) + k, Ordering::SeqCst);
    }

    /// Writes made so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Whether the crash happened.
    pub fn crashed(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// The process is back, on the same storage; nothing fails any more.
    pub fn restart(&self) {
        self.fail_at.store(usize::MAX, Ordering::SeqCst);
        self.dead.store(false, Ordering::SeqCst);
    }

    /// Before a read: fails when the process is dead.
    fn read(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }

    /// Before a write: `Some(do_it)` to go on (performing the write when `do_it`), `None` to
    /// fail without writing.
    fn write(&self) -> Option<bool> {
        if self.dead.load(Ordering::SeqCst) {
            return None;
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.dead.store(true, Ordering::SeqCst);
            return self.after.load(Ordering::SeqCst).then_some(false);
        }
        Some(true)
    }
}

const CRASH: &str = "injected crash";

struct FaultyMeta(Arc<dyn MetadataStore>, Arc<Fault>);
struct FaultyBlobs(Arc<dyn BlobStore>, Arc<Fault>);
struct FaultyQueue(Arc<dyn Queue>, Arc<Fault>);

/// Runs a write through the fault: not at all, or performed and then reported as failed.
macro_rules! write_through {
    ($fault:expr, $err:expr, $call:expr) => {
        match $fault.write() {
            None => Err($err),
            Some(true) => $call,
            Some(false) => {
                let _ = $call;
                Err($err)
            }
        }
    };
}

#[async_trait]
impl MetadataStore for FaultyMeta {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, MetaError> {
        if !self.1.read() {
            return Err(MetaError::Unavailable(CRASH.into()));
        }
        self.0.get(pk, sk).await
    }
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), MetaError> {
        write_through!(
            self.1,
            MetaError::Unavailable(CRASH.into()),
            self.0.put(item, condition).await
        )
    }
    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<Condition>,
    ) -> Result<(), MetaError> {
        write_through!(
            self.1,
            MetaError::Unavailable(CRASH.into()),
            self.0.delete(pk, sk, condition).await
        )
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), MetaError> {
        write_through!(self.1, MetaError::Unavailable(CRASH.into()), self.0.transact(ops).await)
    }
    async fn query(&self, query: Query) -> Result<Page, MetaError> {
        if !self.1.read() {
            return Err(MetaError::Unavailable(CRASH.into()));
        }
        self.0.query(query).await
    }
    async fn update(&self, update: Update) -> Result<Item, MetaError> {
        write_through!(self.1, MetaError::Unavailable(CRASH.into()), self.0.update(update).await)
    }
}

#[async_trait]
impl BlobStore for FaultyBlobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        write_through!(self.1, BlobError::Unavailable(CRASH.into()), self.0.put(key, body).await)
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
        write_through!(
            self.1,
            BlobError::Unavailable(CRASH.into()),
            self.0.put_if_absent(key, body).await
        )
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        if !self.1.read() {
            return Err(BlobError::Unavailable(CRASH.into()));
        }
        self.0.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        write_through!(self.1, BlobError::Unavailable(CRASH.into()), self.0.delete(key).await)
    }
    async fn list(&self, prefix: &str, after: Option<String>) -> Result<BlobList, BlobError> {
        if !self.1.read() {
            return Err(BlobError::Unavailable(CRASH.into()));
        }
        self.0.list(prefix, after).await
    }
    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        response: ResponseHeaders<'_>,
    ) -> Result<String, BlobError> {
        if !self.1.read() {
            return Err(BlobError::Unavailable(CRASH.into()));
        }
        self.0.presign_get(key, expires_in, response).await
    }
    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        if !self.1.read() {
            return Err(BlobError::Unavailable(CRASH.into()));
        }
        self.0.presign_put(key, expires_in).await
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> Result<String, QueueError> {
        write_through!(
            self.1,
            QueueError::Unavailable(CRASH.into()),
            self.0.send(queue, body, delay).await
        )
    }
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        if !self.1.read() {
            return Err(QueueError::Unavailable(CRASH.into()));
        }
        self.0.receive(queue, max, visibility).await
    }
    async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        write_through!(
            self.1,
            QueueError::Unavailable(CRASH.into()),
            self.0.ack(queue, receipt).await
        )
    }
    async fn set_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        write_through!(
            self.1,
            QueueError::Unavailable(CRASH.into()),
            self.0.set_visibility(queue, receipt, visibility).await
        )
    }
    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        if !self.1.read() {
            return Err(QueueError::Unavailable(CRASH.into()));
        }
        self.0.depth(queue).await
    }
}

/// Wraps the metadata, blob and queue ports with one fault switch.
pub fn faulty(ports: Ports, fault: &Arc<Fault>) -> Ports {
    Ports {
        meta: Arc::new(FaultyMeta(ports.meta, fault.clone())),
        blobs: Arc::new(FaultyBlobs(ports.blobs, fault.clone())),
        queue: Arc::new(FaultyQueue(ports.queue, fault.clone())),
        keys: ports.keys,
        push: ports.push,
        external: ports.external,
    }
}

/// An update path the harness crashes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Full checkpoints, events, complete.
    Checkpoint,
    /// Verbatim then delta checkpoints, complete.
    VerbatimDelta,
    /// Journal batches, complete (replay at the end).
    Journal,
    /// A journal update ended by `pulumi cancel`.
    JournalCancel,
    /// A journal update whose CLI died: the reaper ends it.
    JournalReaped,
    /// `stack import`.
    Import,
    /// `stack rename` of a stack with resources.
    Rename,
}

/// `n` resources of a stack `dev` in project `proj`.
fn state(n: usize) -> Value {
    let mut resources = vec![
        json!({"urn": "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev", "type": "pulumi:pulumi:Stack", "custom": false}),
    ];
    for i in 0..n {
        resources.push(
            json!({"urn": format!("urn:pulumi:dev::proj::t:i:R::r{i}"), "type": "t:i:R",
            "custom": true, "id": format!("id-{i}"), "outputs": {"i": i, "pad": "x".repeat(64)},
            "parent": "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev"}),
        );
    }
    json!({"version": 3, "deployment": {"manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""},
        "secrets_providers": {"type": "service", "state": {"url": "x", "owner": "o", "project": "proj", "stack": "dev"}},
        "resources": resources}})
}

fn urns(export: &Value) -> Vec<String> {
    let mut u: Vec<String> = export["deployment"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["urn"].as_str().map(String::from))
        .collect();
    u.sort();
    u
}

/// What the client was told: the resources it knows are stored.
struct Acked {
    resources: usize,
    completed: bool,
    /// The update whose events batch was acknowledged.
    events: Option<String>,
}

async fn attempt(c: &Client, stack: &str, path: Path) -> Acked {
    let mut acked = Acked { resources: 0, completed: false, events: None };
    let ok = |r: &crate::server::Reply| r.status.is_success();
    match path {
        Path::Import => {
            let r = c
                .send(
                    Method::POST,
                    &format!("{stack}/import"),
                    Some(state(3).to_string().into_bytes()),
                    true,
                )
                .await;
            if ok(&r) {
                acked = Acked { resources: 3, completed: true, events: None };
            }
        }
        Path::Rename => {
            let r = c
                .post(&format!("{stack}/rename"), &json!({"newName": "prod", "newProject": "proj"}))
                .await;
            acked = Acked { resources: 3, completed: ok(&r), events: None };
        }
        Path::Checkpoint | Path::VerbatimDelta => {
            let Ok(run) = session::create_and_start(c, stack, "update", false).await else {
                return acked;
            };
            let mut prev: Option<String> = None;
            for n in 1..=3 {
                let s = state(n);
                let r = if path == Path::Checkpoint {
                    run.checkpoint(c, &s).await
                } else if let Some(p) = prev.as_deref() {
                    let raw = s.to_string();
                    let body = json!({"version": 3, "checkpointHash": stackhouse::service::delta::sha256_hex(raw.as_bytes()),
                        "sequenceNumber": n, "deploymentDelta": session::coarse_delta(p, &raw)});
                    run.call(c, Method::PATCH, "/checkpointdelta", Some(&body), true).await
                } else {
                    let body = json!({"version": 3, "untypedDeployment": s, "sequenceNumber": n});
                    run.call(c, Method::PATCH, "/checkpointverbatim", Some(&body), true).await
                };
                if !ok(&r) {
                    return acked;
                }
                acked.resources = n;
                prev = Some(s.to_string());
            }
            let events = [
                json!({"sequence": 1, "timestamp": 1, "summaryEvent": {"resourceChanges": {"create": 3}}}),
            ];
            if !ok(&run.events(c, &events).await) {
                return acked;
            }
            acked.events = Some(run.path.clone());
            acked.completed = ok(&run.complete(c, "succeeded").await);
        }
        Path::Journal | Path::JournalCancel | Path::JournalReaped => {
            let Ok(run) = session::try_create_and_start_journal(c, stack, "update").await else {
                return acked;
            };
            assert!(run.journal, "the server turns journaling on");
            // The stack has no deployment yet: every resource is a create.
            let entries = session::journal_between(&json!({}), &state(3));
            for (i, batch) in entries.chunks(2).enumerate() {
                if !ok(&run.journal(c, batch).await) {
                    return acked;
                }
                // Resources whose success entries were acknowledged (the stack resource first).
                let done = entries[..((i + 1) * 2).min(entries.len())]
                    .iter()
                    .filter(|e| e["kind"] == 1 && e.get("state").is_some())
                    .count();
                acked.resources = done.saturating_sub(1);
            }
            acked.completed = match path {
                Path::Journal => ok(&run.complete(c, "succeeded").await),
                Path::JournalCancel => {
                    let cancel = c.post(&format!("{}/cancel", run.path), &json!({})).await;
                    ok(&cancel)
                }
                _ => false,
            };
        }
    }
    acked
}

/// For every write of `path` and both crash points: crash there, restart, let the lease lapse
/// and the reaper run, then check that every acknowledged write is readable and the stack works.
pub async fn crash_at_every_write(target: fn(&'static str) -> Target, path: Path) {
    // One clean run counts the writes the path makes.
    let total = {
        let (server, fault, stack) = start(target, path).await;
        let before = fault.writes();
        attempt(&server.client(), &stack, path).await;
        let n = fault.writes() - before;
        server.stop().await;
        n
    };
    assert!(total > 0, "{path:?} makes no storage write?");
    for k in 0..total {
        for when in [When::Before, When::After] {
            let (server, fault, stack) = start(target, path).await;
            let c = server.client();
            fault.arm(k, when);
            let acked = attempt(&c, &stack, path).await;
            assert!(fault.crashed(), "{path:?}: write {k} of {total} was never made");
            fault.restart();
            // A restarted process holds nothing in memory.
            server.app.checkpoints.clear();
            check(&server, &stack, path, &acked, k, when).await;
            server.stop().await;
        }
    }
}

async fn start(target: fn(&'static str) -> Target, path: Path) -> (TestServer, Arc<Fault>, String) {
    let fault = Fault::new();
    let wrap = fault.clone();
    let settings = Settings { materialise_every_entries: 2, ..Settings::default() };
    let server =
        TestServer::start_wrapped(target("crash"), settings, move |p| faulty(p, &wrap)).await;
    let c = server.client();
    let stack = format!("/api/stacks/{}/proj/dev", server.user);
    let r =
        c.post(&format!("/api/stacks/{}/proj", server.user), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    if path == Path::Rename {
        let r = c
            .send(
                Method::POST,
                &format!("{stack}/import"),
                Some(state(3).to_string().into_bytes()),
                true,
            )
            .await;
        assert!(r.status.is_success(), "{r:?}");
    }
    (server, fault, stack)
}

async fn check(server: &TestServer, stack: &str, path: Path, acked: &Acked, k: usize, when: When) {
    let c = server.client();
    let what = format!("{path:?}, crash {when:?} write {k}");
    // The lease lapses and the reaper ends whatever the dead process left running.
    server.app.clock.advance(server.app.settings.lease_seconds + 1);
    stackhouse::service::reaper::run(&server.app, server.app.clock.now())
        .await
        .unwrap_or_else(|e| panic!("{what}: the reaper failed: {e}"));
    // A rename acknowledged moved the stack; one not acknowledged may or may not have.
    let renamed = stack.replace("/dev", "/prod");
    let here = if path == Path::Rename && (acked.completed || c.get(stack).await.status == 404) {
        renamed
    } else {
        stack.to_string()
    };
    let export = c.get(&format!("{here}/export")).await;
    assert_eq!(export.status, 200, "{what}: export {export:?}");
    let stored = urns(&export.json());
    let mut expected = urns(&state(acked.resources));
    if path == Path::Rename && here.ends_with("/prod") {
        // The rename rewrites the stack name in every URN, the root resource's name too.
        expected = expected
            .iter()
            .map(|u| u.replace(":dev::", ":prod::").replace("::proj-dev", "::proj-prod"))
            .collect();
    }
    if acked.resources > 0 || acked.completed {
        for urn in &expected {
            assert!(stored.contains(urn), "{what}: acknowledged {urn} is lost; stored {stored:?}");
        }
    }
    if let Some(update) = &acked.events {
        let listed = c.get(&format!("{update}/events")).await;
        assert_eq!(listed.status, 200, "{what}: events {listed:?}");
        let body = listed.json();
        let summary = body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e.get("summaryEvent").is_some());
        assert!(summary, "{what}: the acknowledged events are lost: {body}");
    }
    ended_updates_have_their_records(&c, &server.user, &here, &what).await;
    // Usable: a new update starts and completes.
    let run = session::create_and_start(&c, &here, "update", false)
        .await
        .unwrap_or_else(|r| panic!("{what}: the stack is not usable: {r:?}"));
    let done = run.complete(&c, "succeeded").await;
    assert!(done.status.is_success(), "{what}: {done:?}");
    if acked.completed && matches!(path, Path::Checkpoint | Path::VerbatimDelta | Path::Journal) {
        let hist = c.get(&format!("{here}/updates?pageSize=10&page=1")).await.json();
        let results: Vec<&str> = hist["updates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["result"].as_str())
            .collect();
        assert!(
            results.contains(&"succeeded"),
            "{what}: the completed update is in history: {hist}"
        );
    }
}

/// Every update the stack's history shows, a program run (not an import or rename), has its
/// audit summary and its `update-ended` event, whatever write the crash hit: they are written
/// in the transaction that ends it, so none of them exists without the others.
async fn ended_updates_have_their_records(c: &Client, org: &str, stack: &str, what: &str) {
    let hist = c.get(&format!("{stack}/updates?pageSize=100&page=1")).await.json();
    let ran: Vec<i64> = hist["updates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| !matches!(u["kind"].as_str(), Some("import" | "rename")))
        .filter_map(|u| u["version"].as_i64())
        .collect();
    let page = c.get(&format!("/api/orgs/{org}/events?after=0&limit=500")).await;
    assert_eq!(page.status, 200, "{what}: events {page:?}");
    let ends: Vec<Value> = page.json()["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "update-ended" && e["payload"]["kind"] != "preview")
        .cloned()
        .collect();
    let mut versions: Vec<i64> =
        ends.iter().filter_map(|e| e["payload"]["version"].as_i64()).collect();
    versions.sort_unstable();
    let mut expected = ran.clone();
    expected.sort_unstable();
    assert_eq!(versions, expected, "{what}: update-ended events {ends:?} for history {hist}");
    let entries = crate::audit::all_entries(c, org, "").await;
    for end in &ends {
        let id = end["payload"]["updateId"].as_str().unwrap_or("?");
        let summaries = entries
            .iter()
            .filter(|e| e["event"] == "update-ended")
            .filter(|e| e["resource"].as_str().is_some_and(|r| r.ends_with(id)))
            .count();
        assert_eq!(summaries, 1, "{what}: audit summaries of update {id}: {entries:#?}");
    }
}

/// Declares the crash suite for one backend.
#[macro_export]
macro_rules! crash_tests {
    ($target:expr) => {
        $crate::crash_tests!(@each $target;
            crash_during_checkpoints => Checkpoint,
            crash_during_verbatim_and_delta => VerbatimDelta,
            crash_during_journal => Journal,
            crash_during_cancel => JournalCancel,
            crash_before_the_reaper => JournalReaped,
            crash_during_import => Import,
            crash_during_rename => Rename,
        );
    };
    (@each $target:expr; $($name:ident => $path:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::faults::crash_at_every_write($target, $crate::faults::Path::$path).await;
            }
        )*
    };
}
