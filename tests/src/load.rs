//! The load generator behind `cargo run -p stackhouse-tests --bin loadgen` (docs/BENCHMARKS.md):
//! replays Pulumi CLI sessions (docs/PROTOCOL-NOTES.md, Update lifecycle) against any server that
//! speaks the Pulumi service protocol, given a base URL, an access token and an organization.
//!
//! One session on one stack: create the stack, `up` of N resources, a no-op `up`, an `up` that
//! adds 2, `export`, `destroy`, `stack rm`. Each `up`/`destroy` is a dry run followed by the
//! update, as `pulumi up` does. State is persisted in one of the three modes of
//! [`session::Mode`] the way the CLI persists it: journal entries in ordered batches of at most
//! 100, or a checkpoint (full, or verbatim then delta) at the start and at the end of every
//! mutating step. Engine events go out in batches of at most 50 with up to 3 in flight; the
//! lease is renewed whenever it is older than the renewal interval.
//!
//! Measured per phase: wall time, requests, bytes sent (before and after gzip), and, when the
//! server runs in this process on ports wrapped by [`counting`], the storage operations and
//! their cost at AWS prices ([`Prices`]).
//!
//! Full and verbatim checkpoints are O(N²) in bytes over an update: when the bytes of every
//! save would exceed [`Scenario::save_budget_bytes`], only every S-th save is sent (the final
//! state always is) and each sent save is counted S times; the report marks such numbers as
//! extrapolated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use stackhouse::adapters::counting::{self, Counters, OpCounts};

use crate::server::Client;
use crate::session::{self, Mode, Persister, Run};

// ----------------------------------------------------------------------------------------
// Request recording
// ----------------------------------------------------------------------------------------

/// Latency and bytes of every request a recording [`Client`] sends.
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<RecorderInner>,
}

#[derive(Default)]
struct RecorderInner {
    routes: BTreeMap<String, RouteStats>,
    totals: Traffic,
}

#[derive(Default)]
struct RouteStats {
    micros: Vec<u64>,
    traffic: Traffic,
}

/// Requests and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Requests sent.
    pub requests: u64,
    /// Request body bytes before gzip.
    pub sent_raw: u64,
    /// Request body bytes on the wire (after gzip where the CLI gzips).
    pub sent_wire: u64,
    /// Response body bytes on the wire.
    pub received: u64,
}

impl std::ops::Sub for Traffic {
    type Output = Traffic;
    fn sub(self, o: Traffic) -> Traffic {
        Traffic {
            requests: self.requests - o.requests,
            sent_raw: self.sent_raw - o.sent_raw,
            sent_wire: self.sent_wire - o.sent_wire,
            received: self.received - o.received,
        }
    }
}

impl std::ops::Add for Traffic {
    type Output = Traffic;
    fn add(self, o: Traffic) -> Traffic {
        Traffic {
            requests: self.requests + o.requests,
            sent_raw: self.sent_raw + o.sent_raw,
            sent_wire: self.sent_wire + o.sent_wire,
            received: self.received + o.received,
        }
    }
}

impl Traffic {
    fn times(self, k: u64) -> Traffic {
        Traffic {
            requests: self.requests * k,
            sent_raw: self.sent_raw * k,
            sent_wire: self.sent_wire * k,
            received: self.received * k,
        }
    }
}

/// Latency percentiles of one route.
#[derive(Debug, Clone, Serialize)]
pub struct RouteRow {
    /// `METHOD name`, e.g. `PATCH checkpoint`.
    pub route: String,
    /// Requests.
    pub count: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Mean request body on the wire, bytes.
    pub mean_sent_wire: u64,
}

impl Recorder {
    /// Records one request.
    pub fn record(
        &self,
        route: String,
        took: Duration,
        sent_raw: usize,
        sent_wire: usize,
        received: usize,
    ) {
        let t = Traffic {
            requests: 1,
            sent_raw: sent_raw as u64,
            sent_wire: sent_wire as u64,
            received: received as u64,
        };
        // A poisoned lock only means another recording thread panicked: keep counting.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.totals = inner.totals + t;
        let r = inner.routes.entry(route).or_default();
        r.micros.push(took.as_micros() as u64);
        r.traffic = r.traffic + t;
    }

    /// Requests and bytes so far.
    pub fn totals(&self) -> Traffic {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).totals
    }

    /// Per-route percentiles so far.
    pub fn routes(&self) -> Vec<RouteRow> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .routes
            .iter()
            .map(|(route, s)| {
                let mut v = s.micros.clone();
                v.sort_unstable();
                let pct = |p: f64| {
                    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
                    v[i] as f64 / 1000.0
                };
                RouteRow {
                    route: route.clone(),
                    count: s.traffic.requests,
                    p50_ms: pct(0.50),
                    p99_ms: pct(0.99),
                    max_ms: v.last().copied().unwrap_or(0) as f64 / 1000.0,
                    mean_sent_wire: s.traffic.sent_wire / s.traffic.requests.max(1),
                }
            })
            .collect()
    }
}

/// A route name for a request path, from the shapes of docs/PROTOCOL-NOTES.md, Endpoints (no
/// server knowledge):
/// `POST update-create`, `PATCH checkpoint`, `POST events/batch`, …
pub fn route_label(method: &Method, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let name = match segs.as_slice() {
        ["api", "stacks", _, _] => "stack-create".to_string(),
        ["api", "stacks", _, _, _] => "stack".to_string(),
        ["api", "stacks", _, _, _, "export"] => "export".to_string(),
        ["api", "stacks", _, _, _, kind] => format!("update-create ({kind})"),
        ["api", "stacks", _, _, _, _, _] => "update-start".to_string(),
        ["api", "stacks", _, _, _, _, _, rest @ ..] => rest.join("/"),
        other => other.join("/"),
    };
    format!("{method} {name}")
}

// ----------------------------------------------------------------------------------------
// AWS prices
// ----------------------------------------------------------------------------------------

/// Public AWS list prices, us-east-1, in USD (docs/BENCHMARKS.md gives their date).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Prices {
    /// DynamoDB on-demand, per read request unit.
    pub ddb_read_unit: f64,
    /// DynamoDB on-demand, per write request unit.
    pub ddb_write_unit: f64,
    /// S3 Standard PUT, COPY, POST, LIST, per request.
    pub s3_put: f64,
    /// S3 Standard GET, per request.
    pub s3_get: f64,
    /// KMS, per request.
    pub kms_request: f64,
    /// SQS standard queue, per request.
    pub sqs_request: f64,
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub apigw_request: f64,
    /// Lambda, per invocation (duration not included: see docs/BENCHMARKS.md).
    pub lambda_request: f64,
}

/// The prices used in docs/BENCHMARKS.md.
pub const PRICES: Prices = Prices {
    ddb_read_unit: 0.125 / 1e6,
    ddb_write_unit: 0.625 / 1e6,
    s3_put: 0.005 / 1e3,
    s3_get: 0.0004 / 1e3,
    kms_request: 0.03 / 1e4,
    sqs_request: 0.40 / 1e6,
    apigw_request: 1.00 / 1e6,
    lambda_request: 0.20 / 1e6,
};

/// Cost in USD of storage operations and of `requests` API requests (one Lambda invocation
/// each).
pub fn cost(ops: &OpCounts, requests: u64, p: &Prices) -> f64 {
    ops.meta_read_units as f64 * p.ddb_read_unit
        + ops.meta_write_units as f64 * p.ddb_write_unit
        + (ops.blob_puts + ops.blob_lists) as f64 * p.s3_put
        + ops.blob_gets as f64 * p.s3_get
        + ops.kms_calls as f64 * p.kms_request
        + ops.queue_requests() as f64 * p.sqs_request
        + requests as f64 * (p.apigw_request + p.lambda_request)
}

// ----------------------------------------------------------------------------------------
// Scenario and results
// ----------------------------------------------------------------------------------------

/// Where the server is and who we are.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, no trailing `/`.
    pub base: String,
    /// Access token.
    pub token: String,
    /// Organization the stacks go to.
    pub org: String,
}

/// One load run.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Resources of the first `up`.
    pub n: usize,
    /// Bytes of padding in every resource's outputs (0 = none; 16,384 for "~16 KB").
    pub pad_bytes: usize,
    /// Persistence mode asked for (the server may turn journaling down, as with the CLI).
    #[serde(serialize_with = "ser_mode")]
    pub mode: Mode,
    /// Stacks updated in parallel, one session each.
    pub stacks: usize,
    /// Run the dry run before each update, as `pulumi up` does without `--skip-preview`.
    pub preview: bool,
    /// Renew the lease when it is older than this (the CLI: about 150 s).
    pub renew_every: Duration,
    /// Most bytes of checkpoints one update may send before saves are sampled.
    pub save_budget_bytes: u64,
}

fn ser_mode<S: serde::Serializer>(m: &Mode, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(mode_name(*m))
}

/// The name of a mode in reports and on the command line.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Journal => "journal",
        Mode::VerbatimDelta => "delta",
        Mode::Full => "full",
    }
}

/// Parses a mode name ([`mode_name`]).
pub fn parse_mode(s: &str) -> Option<Mode> {
    match s {
        "journal" => Some(Mode::Journal),
        "delta" | "verbatim" | "verbatim+delta" => Some(Mode::VerbatimDelta),
        "full" => Some(Mode::Full),
        _ => None,
    }
}

impl Scenario {
    /// A single-stack run with the CLI's defaults.
    pub fn new(n: usize, mode: Mode) -> Scenario {
        Scenario {
            n,
            pad_bytes: 0,
            mode,
            stacks: 1,
            preview: true,
            renew_every: Duration::from_secs(150),
            save_budget_bytes: 1 << 30,
        }
    }
}

/// What one phase cost, over all stacks.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// `create`, `up`, `up-noop`, `up-add2`, `export`, `destroy`, `rm`.
    pub name: &'static str,
    /// Engine steps of the update (per stack), 0 for non-update phases.
    pub steps: usize,
    /// Wall time as measured, ms.
    pub wall_ms: f64,
    /// Requests and bytes as measured.
    pub traffic: Traffic,
    /// Storage operations as measured (in-process servers only).
    pub ops: Option<OpCounts>,
    /// Only every `sample_every`-th save was sent (1 = all of them).
    pub sample_every: usize,
    /// What the unsent saves would have added (zero unless sampled): wall ms.
    pub extra_wall_ms: f64,
    /// … requests and bytes.
    pub extra_traffic: Traffic,
    /// … storage operations.
    pub extra_ops: Option<OpCounts>,
    /// Persistence mode the server accepted.
    pub effective_mode: &'static str,
}

impl Phase {
    /// Wall time including the extrapolated saves.
    pub fn total_wall_ms(&self) -> f64 {
        self.wall_ms + self.extra_wall_ms
    }
    /// Requests and bytes including the extrapolated saves.
    pub fn total_traffic(&self) -> Traffic {
        self.traffic + self.extra_traffic
    }
    /// Storage operations including the extrapolated saves.
    pub fn total_ops(&self) -> Option<OpCounts> {
        match (self.ops, self.extra_ops) {
            (Some(a), Some(b)) => Some(add_ops(a, b)),
            (a, _) => a,
        }
    }
}

/// The result of one [`Scenario`].
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Label of the server (`embedded`, `aws (moto)`, or the URL).
    pub backend: String,
    /// What was run.
    pub scenario: Scenario,
    /// Per phase.
    pub phases: Vec<Phase>,
    /// Per route, over the whole run (sampled saves not extrapolated).
    pub routes: Vec<RouteRow>,
    /// Whole-run wall time, ms (measured).
    pub wall_ms: f64,
}

fn add_ops(a: OpCounts, b: OpCounts) -> OpCounts {
    // OpCounts has subtraction only; a + b == a - (0 - b) does not work on unsigned numbers,
    // so add field by field through the serialised form.
    let mut out = a;
    macro_rules! sum {
        ($($f:ident),*) => { $( out.$f = a.$f + b.$f; )* };
    }
    sum!(
        meta_gets,
        meta_queries,
        meta_query_items,
        meta_puts,
        meta_deletes,
        meta_transactions,
        meta_transaction_items,
        meta_read_units,
        meta_write_units,
        meta_bytes_written,
        blob_puts,
        blob_gets,
        blob_lists,
        blob_deletes,
        blob_presigns,
        blob_bytes_put,
        blob_bytes_got,
        kms_calls,
        queue_sends,
        queue_receives,
        queue_acks
    );
    out
}

fn scale_ops(a: OpCounts, k: u64) -> OpCounts {
    let mut out = OpCounts::default();
    for _ in 0..k {
        out = add_ops(out, a);
    }
    out
}

// ----------------------------------------------------------------------------------------
// The session
// ----------------------------------------------------------------------------------------

/// A failed call: the load generator stops with this message.
pub type Result<T> = std::result::Result<T, String>;

fn check(what: &str, r: &crate::server::Reply) -> Result<()> {
    if r.status.is_success() {
        Ok(())
    } else {
        Err(format!("{what}: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body)))
    }
}

fn json_of(what: &str, r: &crate::server::Reply) -> Result<Value> {
    check(what, r)?;
    serde_json::from_slice(&r.body).map_err(|e| format!("{what}: body is not JSON: {e}"))
}

const PROJECT: &str = "loadgen";

/// One resource of the synthetic program: an S3-bucket-shaped custom resource (the shape of
/// `shared/benches/journal_replay.rs`), with `pad` bytes of extra output.
pub fn resource(stack: &str, i: usize, pad: usize) -> Value {
    let mut r = json!({
        "urn": format!("urn:pulumi:{stack}::{PROJECT}::aws:s3/bucket:Bucket::bucket-{i}"),
        "custom": true,
        "id": format!("bucket-{i}-0a1b2c3d"),
        "type": "aws:s3/bucket:Bucket",
        "inputs": {"acl": "private", "tags": {"Name": format!("bucket-{i}")}},
        "outputs": {"acl": "private", "arn": format!("arn:aws:s3:::bucket-{i}-0a1b2c3d"), "bucket": format!("bucket-{i}-0a1b2c3d")},
        "parent": format!("urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"),
        "provider": format!("urn:pulumi:{stack}::{PROJECT}::pulumi:providers:aws::default_6_0_0::04da6b54-80e4-46f7-96ec-b56ff0331ba9"),
        "propertyDependencies": {"acl": [], "tags": []}
    });
    if pad > 0 {
        // Varied text, so gzip does not squeeze it to nothing (a policy document, user data…).
        let mut s = String::with_capacity(pad);
        let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        while s.len() < pad {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push_str(&format!("{x:016x}"));
        }
        s.truncate(pad);
        r["outputs"]["policy"] = Value::String(s);
    }
    r
}

enum Step {
    Same,
    Create(Value),
    Delete,
}

/// Sends engine events as the CLI does: batches of at most 50, up to 3 in flight.
struct EventSender {
    client: Arc<Client>,
    run: Run,
    pending: Vec<Value>,
    inflight: Vec<tokio::task::JoinHandle<Result<()>>>,
    seq: i64,
}

impl EventSender {
    fn new(client: Arc<Client>, run: Run) -> EventSender {
        EventSender { client, run, pending: Vec::new(), inflight: Vec::new(), seq: 0 }
    }

    async fn push(&mut self, payload_key: &str, payload: Value) -> Result<()> {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut e = json!({"sequence": self.seq, "timestamp": ts});
        e[payload_key] = payload;
        self.seq += 1;
        self.pending.push(e);
        if self.pending.len() >= 50 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.inflight.len() >= 3 {
            let first = self.inflight.remove(0);
            first.await.map_err(|e| format!("event batch task: {e}"))??;
        }
        let batch = std::mem::take(&mut self.pending);
        let (client, run) = (self.client.clone(), self.run.clone());
        self.inflight.push(tokio::spawn(async move {
            let r = run.events(&client, &batch).await;
            check("POST events/batch", &r)
        }));
        Ok(())
    }

    async fn drain(&mut self) -> Result<()> {
        self.flush().await?;
        for t in std::mem::take(&mut self.inflight) {
            t.await.map_err(|e| format!("event batch task: {e}"))??;
        }
        Ok(())
    }
}

fn step_event(op: &str, r: &Value, planning: bool, outputs: bool) -> Value {
    let state = json!({
        "type": r["type"], "urn": r["urn"], "custom": true, "id": r["id"], "parent": r["parent"],
        "inputs": r["inputs"], "outputs": if outputs { r["outputs"].clone() } else { json!({}) },
        "provider": r["provider"],
    });
    let (old, new) = if op == "delete" { (state, Value::Null) } else { (Value::Null, state) };
    json!({"metadata": {"op": op, "urn": r["urn"], "type": r["type"], "old": old, "new": new,
        "detailedDiff": null, "provider": r["provider"]}, "planning": planning})
}

/// Per-update measurements of the sampled saves.
#[derive(Default, Clone, Copy)]
struct SampleCost {
    wall: Duration,
    traffic: Traffic,
    ops: OpCounts,
    sample_every: usize,
}

/// One stack's session.
struct Session {
    client: Arc<Client>,
    recorder: Arc<Recorder>,
    counters: Option<Arc<Counters>>,
    sc: Scenario,
    stack: String,
    path: String,
    resources: Vec<Value>,
    cutoff: usize,
    effective: Mode,
}

impl Session {
    fn untyped(&self, resources: &[Value], pending: Option<(&Value, &str)>) -> Value {
        let mut d = json!({
            "manifest": {"time": "2026-11-23T00:00:00Z", "magic": "", "version": "v3.200.0"},
            "secrets_providers": {"type": "service", "state": {"owner": self.path.split('/').nth(3).unwrap_or(""), "project": PROJECT, "stack": self.stack}},
            "metadata": {},
            "resources": resources,
        });
        if let Some((r, kind)) = pending {
            d["pending_operations"] = json!([{"resource": r, "type": kind}]);
        }
        json!({"version": 3, "deployment": d})
    }

    async fn create(&mut self, org: &str) -> Result<()> {
        let caps = json_of("GET capabilities", &self.client.get("/api/capabilities").await)?;
        self.cutoff = caps["capabilities"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["capability"] == "delta-checkpoint-uploads-v2"))
            .and_then(|x| x["configuration"]["checkpointCutoffSizeBytes"].as_u64())
            .map(|c| c as usize)
            .unwrap_or(usize::MAX);
        // Without the delta capability the CLI sends full checkpoints (docs/PROTOCOL-NOTES.md,
        // Checkpoints).
        if self.sc.mode == Mode::VerbatimDelta && self.cutoff == usize::MAX {
            self.effective = Mode::Full;
        }
        let r = self
            .client
            .post(&format!("/api/stacks/{org}/{PROJECT}"), &json!({"stackName": self.stack}))
            .await;
        check("POST stack-create", &r)
    }

    /// A `pulumi up`/`destroy`: the dry run (events only), then the update to `target`.
    async fn update(&mut self, kind: &str, target: Vec<Value>) -> Result<SampleCost> {
        let urns: HashMap<String, usize> = self
            .resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r["urn"].as_str().map(|u| (u.to_string(), i)))
            .collect();
        let kept: HashSet<&str> = target.iter().filter_map(|r| r["urn"].as_str()).collect();
        let mut steps: Vec<(Step, Value)> = Vec::new();
        for r in &target {
            match r["urn"].as_str().and_then(|u| urns.get(u)) {
                Some(_) => steps.push((Step::Same, r.clone())),
                None => steps.push((Step::Create(r.clone()), r.clone())),
            }
        }
        // Dependents go first, as the engine deletes them.
        for r in self.resources.iter().rev() {
            if !r["urn"].as_str().is_some_and(|u| kept.contains(u)) {
                steps.push((Step::Delete, r.clone()));
            }
        }
        if self.sc.preview {
            self.dry_run(kind, &steps).await?;
        }
        let cost = self.real_run(kind, &steps, &target).await?;
        self.resources = target;
        Ok(cost)
    }

    async fn dry_run(&self, kind: &str, steps: &[(Step, Value)]) -> Result<()> {
        let c = &self.client;
        let run = session::create_and_start(c, &self.path, kind, true).await.map_err(|r| {
            format!("preview start: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body))
        })?;
        json_of("GET export", &c.get(&format!("{}/export", self.path)).await)?;
        let mut ev = EventSender::new(c.clone(), run.clone());
        ev.push("preludeEvent", json!({"config": {"aws:region": "us-west-2"}})).await?;
        for (step, r) in steps {
            let op = op_name(step);
            ev.push("resourcePreEvent", step_event(op, r, true, false)).await?;
            ev.push("resOutputsEvent", step_event(op, r, true, false)).await?;
        }
        ev.push("summaryEvent", summary(steps, true)).await?;
        ev.drain().await?;
        check("POST complete", &run.complete(c, "succeeded").await)
    }

    async fn real_run(
        &mut self,
        kind: &str,
        steps: &[(Step, Value)],
        target: &[Value],
    ) -> Result<SampleCost> {
        let c = self.client.clone();
        let want_journal = self.sc.mode == Mode::Journal;
        let mut run = if want_journal {
            session::create_and_start_journal(&c, &self.path, kind).await.0
        } else {
            session::create_and_start(&c, &self.path, kind, false).await.map_err(|r| {
                format!("update start: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body))
            })?
        };
        if want_journal && !run.journal {
            // The server declined journaling: the CLI falls back to checkpoints.
            self.effective =
                if self.cutoff == usize::MAX { Mode::Full } else { Mode::VerbatimDelta };
        }
        let base = json_of("GET export", &c.get(&format!("{}/export", self.path)).await)?;
        json_of("GET stack", &c.get(&self.path).await)?;
        let mut leased = Instant::now();

        let mut ev = EventSender::new(c.clone(), run.clone());
        ev.push("preludeEvent", json!({"config": {"aws:region": "us-west-2"}})).await?;

        let mut cost = SampleCost { sample_every: 1, ..Default::default() };
        if self.effective == Mode::Journal {
            let entries = session::journal_between(&base, &self.untyped(target, None));
            // Entries not belonging to a step (the secrets manager) go with the first batch.
            let lead = entries.len().saturating_sub(2 * steps.len());
            let mut sent = 0;
            for (i, (step, r)) in steps.iter().enumerate() {
                let op = op_name(step);
                ev.push("resourcePreEvent", step_event(op, r, false, false)).await?;
                ev.push("resOutputsEvent", step_event(op, r, false, true)).await?;
                let produced = (lead + 2 * (i + 1)).min(entries.len());
                while produced - sent >= 100 {
                    let r = run.journal(&c, &entries[sent..sent + 100]).await;
                    check("PATCH journalentries", &r)?;
                    sent += 100;
                }
                renew_if_due(&c, &mut run, &mut leased, self.sc.renew_every).await?;
            }
            if sent < entries.len() {
                check("PATCH journalentries", &run.journal(&c, &entries[sent..]).await)?;
            }
        } else {
            cost = self.checkpoints(&c, &mut run, &mut leased, &mut ev, steps, base).await?;
        }
        ev.push("summaryEvent", summary(steps, false)).await?;
        ev.drain().await?;
        check("POST complete", &run.complete(&c, "succeeded").await)?;
        Ok(cost)
    }

    /// Checkpoint persistence: a save when a mutating step begins (its pending operation) and
    /// one when it ends, sampled when the update's saves would exceed the byte budget.
    async fn checkpoints(
        &self,
        c: &Arc<Client>,
        run: &mut Run,
        leased: &mut Instant,
        ev: &mut EventSender,
        steps: &[(Step, Value)],
        base: Value,
    ) -> Result<SampleCost> {
        let mutating = steps.iter().filter(|(s, _)| !matches!(s, Step::Same)).count();
        let avg_resource = self
            .resources
            .iter()
            .chain(steps.iter().map(|(_, r)| r))
            .take(16)
            .map(|r| r.to_string().len() as u64)
            .max()
            .unwrap_or(1000);
        let peak = self.resources.len().max(steps.len()) as u64;
        // 2 saves per mutating step, each of ~half the peak size on average.
        let budget_total = 2 * mutating as u64 * (peak * avg_resource / 2).max(1);
        let every = usize::try_from(budget_total.div_ceil(self.sc.save_budget_bytes.max(1)))
            .unwrap_or(1)
            .max(1);
        let mut cost = SampleCost { sample_every: every, ..Default::default() };

        let mut persister = Persister::with_cutoff(self.effective, self.cutoff, base);
        let mut cur: Vec<Value> = self.resources.clone();
        let mut save_no = 0usize;
        let mut dirty = false;
        for (step, r) in steps {
            let op = op_name(step);
            ev.push("resourcePreEvent", step_event(op, r, false, false)).await?;
            let (pending, kind): (Option<&Value>, &str) = match step {
                Step::Same => (None, ""),
                Step::Create(_) => (Some(r), "creating"),
                Step::Delete => (Some(r), "deleting"),
            };
            if let Some(p) = pending {
                for phase in 0..2 {
                    if phase == 1 {
                        match step {
                            Step::Create(r) => cur.push(r.clone()),
                            Step::Delete => {
                                let urn = &r["urn"];
                                cur.retain(|x| &x["urn"] != urn);
                            }
                            Step::Same => {}
                        }
                    }
                    save_no += 1;
                    if every > 1 && !save_no.is_multiple_of(every) {
                        dirty = true;
                        continue;
                    }
                    let state = self.untyped(&cur, if phase == 0 { Some((p, kind)) } else { None });
                    if every > 1 {
                        // Measure this save alone: no event batch in flight meanwhile.
                        ev.drain().await?;
                        let (t0, o0) = (self.recorder.totals(), self.ops());
                        let started = Instant::now();
                        persister.save(c, run, &state).await;
                        cost.wall += started.elapsed();
                        cost.traffic = cost.traffic + (self.recorder.totals() - t0);
                        cost.ops = add_ops(cost.ops, self.ops() - o0);
                    } else {
                        persister.save(c, run, &state).await;
                    }
                    dirty = false;
                }
            }
            ev.push("resOutputsEvent", step_event(op, r, false, true)).await?;
            renew_if_due(c, run, leased, self.sc.renew_every).await?;
        }
        if dirty || save_no == 0 {
            // The final state always goes out (the CLI's last save before `complete`).
            persister.save(c, run, &self.untyped(&cur, None)).await;
        }
        Ok(cost)
    }

    fn ops(&self) -> OpCounts {
        self.counters.as_ref().map(|c| c.snapshot()).unwrap_or_default()
    }
}

async fn renew_if_due(
    c: &Client,
    run: &mut Run,
    leased: &mut Instant,
    every: Duration,
) -> Result<()> {
    if leased.elapsed() < every {
        return Ok(());
    }
    let v = json_of("POST renew_lease", &run.renew(c).await)?;
    if let Some(t) = v["token"].as_str().filter(|t| !t.is_empty()) {
        run.token = t.to_string();
    }
    *leased = Instant::now();
    Ok(())
}

fn op_name(step: &Step) -> &'static str {
    match step {
        Step::Same => "same",
        Step::Create(_) => "create",
        Step::Delete => "delete",
    }
}

fn summary(steps: &[(Step, Value)], preview: bool) -> Value {
    let mut changes: BTreeMap<&str, u64> = BTreeMap::new();
    for (s, _) in steps {
        *changes.entry(op_name(s)).or_default() += 1;
    }
    json!({"maybeCorrupt": false, "durationSeconds": 1, "resourceChanges": changes,
        "PolicyPacks": {}, "isPreview": preview, "result": "succeeded"})
}

/// Runs one scenario against `endpoint` and reports it. `counters` are the storage-operation
/// counters of an in-process server, when there is one.
pub async fn run(
    endpoint: &Endpoint,
    backend: &str,
    sc: &Scenario,
    counters: Option<Arc<Counters>>,
) -> Result<Report> {
    let recorder = Arc::new(Recorder::default());
    let client = Arc::new(Client::recording(&endpoint.base, &endpoint.token, recorder.clone()));
    let tag = format!("{:08x}", rand::random::<u32>());
    let mut sessions: Vec<Session> = (0..sc.stacks.max(1))
        .map(|i| {
            let stack = format!("n{}-{}-{tag}-{i}", sc.n, mode_name(sc.mode));
            Session {
                client: client.clone(),
                recorder: recorder.clone(),
                counters: counters.clone(),
                sc: sc.clone(),
                path: format!("/api/stacks/{}/{PROJECT}/{stack}", endpoint.org),
                stack,
                resources: Vec::new(),
                cutoff: usize::MAX,
                effective: sc.mode,
            }
        })
        .collect();

    let started = Instant::now();
    let mut phases = Vec::new();
    for name in ["create", "up", "up-noop", "up-add2", "export", "destroy", "rm"] {
        let (t0, o0) = (recorder.totals(), counters.as_ref().map(|c| c.snapshot()));
        let phase_start = Instant::now();
        let mut handles = Vec::new();
        for mut s in sessions.drain(..) {
            let org = endpoint.org.clone();
            handles.push(tokio::spawn(async move {
                let r = phase(&mut s, name, &org).await;
                (s, r)
            }));
        }
        let mut samples = Vec::new();
        for h in handles {
            let (s, r) = h.await.map_err(|e| format!("session task: {e}"))?;
            samples.push(r.map_err(|e| format!("{} {name}: {e}", s.stack))?);
            sessions.push(s);
        }
        let wall_ms = phase_start.elapsed().as_secs_f64() * 1000.0;
        let ops = match (&counters, o0) {
            (Some(c), Some(o0)) => Some(c.snapshot() - o0),
            _ => None,
        };
        let every = samples.iter().map(|s| s.sample_every).max().unwrap_or(1);
        let (mut extra_wall, mut extra_traffic, mut extra_ops) =
            (0f64, Traffic::default(), OpCounts::default());
        for s in &samples {
            let k = (s.sample_every.max(1) - 1) as u64;
            extra_wall = extra_wall.max(s.wall.as_secs_f64() * 1000.0 * k as f64);
            extra_traffic = extra_traffic + s.traffic.times(k);
            extra_ops = add_ops(extra_ops, scale_ops(s.ops, k));
        }
        let steps = match name {
            "up" => sc.n,
            "up-noop" => sc.n,
            "up-add2" => sc.n + 2,
            "destroy" => sc.n + 2,
            _ => 0,
        };
        phases.push(Phase {
            name,
            steps,
            wall_ms,
            traffic: recorder.totals() - t0,
            ops,
            sample_every: every,
            extra_wall_ms: extra_wall,
            extra_traffic,
            extra_ops: counters.as_ref().map(|_| extra_ops),
            effective_mode: sessions.first().map(|s| mode_name(s.effective)).unwrap_or("-"),
        });
    }
    Ok(Report {
        backend: backend.to_string(),
        scenario: sc.clone(),
        phases,
        routes: recorder.routes(),
        wall_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

async fn phase(s: &mut Session, name: &str, org: &str) -> Result<SampleCost> {
    let none = SampleCost { sample_every: 1, ..Default::default() };
    let (stack, n, pad) = (s.stack.clone(), s.sc.n, s.sc.pad_bytes);
    match name {
        "create" => s.create(org).await.map(|_| none),
        "up" => s.update("update", (0..n).map(|i| resource(&stack, i, pad)).collect()).await,
        "up-noop" => s.update("update", (0..n).map(|i| resource(&stack, i, pad)).collect()).await,
        "up-add2" => {
            s.update("update", (0..n + 2).map(|i| resource(&stack, i, pad)).collect()).await
        }
        "export" => {
            let v = json_of("GET export", &s.client.get(&format!("{}/export", s.path)).await)?;
            let got = v["deployment"]["resources"].as_array().map(Vec::len).unwrap_or(0);
            if got != n + 2 {
                return Err(format!("export has {got} resources, expected {}", n + 2));
            }
            Ok(none)
        }
        "destroy" => s.update("destroy", Vec::new()).await,
        "rm" => {
            let r = s.client.delete(&format!("{}?force=false", s.path)).await;
            check("DELETE stack", &r).map(|_| none)
        }
        other => Err(format!("unknown phase {other}")),
    }
}

// ----------------------------------------------------------------------------------------
// In-process servers with counted ports
// ----------------------------------------------------------------------------------------

/// An emulator started in this process on counted ports, plus its bootstrap credentials.
pub struct LocalServer {
    /// Where it listens, its token and organization.
    pub endpoint: Endpoint,
    /// The storage-operation counters of its ports.
    pub counters: Arc<Counters>,
    /// The application it serves (counted ports), for direct timings of single stages.
    pub app: Arc<stackhouse::App>,
    server: Option<local_emulator::server::Server>,
    data_dir: Option<std::path::PathBuf>,
    _moto: Option<crate::moto::MotoServer>,
}

/// Which backend [`LocalServer::start`] runs.
pub enum LocalBackend {
    /// The embedded store in a fresh temporary directory.
    Embedded,
    /// The AWS adapters against a moto server: `$STACKHOUSE_MOTO_ENDPOINT`, else one started
    /// for this run.
    Moto,
}

impl LocalServer {
    /// Starts the emulator on a free port with counted ports and default settings, except
    /// that the token and organization rate limits are raised far above what one load run
    /// sends from its single token: they stay on, so every request pays their storage
    /// operations exactly as in production, but a synthetic burst of 32 parallel sessions is
    /// not throttled (the real CLI would wait out a 429; the load client does not).
    pub async fn start(backend: LocalBackend) -> Result<LocalServer> {
        use stackhouse::service::ratelimit::Limit;
        let settings = stackhouse::app::Settings {
            rate_limit_token: Some(Limit::per_minute(1_000_000)),
            rate_limit_org: Some(Limit::per_minute(1_000_000)),
            ..stackhouse::app::Settings::default()
        };
        LocalServer::start_with(backend, settings).await
    }

    /// Starts the emulator on a free port with counted ports.
    pub async fn start_with(
        backend: LocalBackend,
        settings: stackhouse::app::Settings,
    ) -> Result<LocalServer> {
        use local_emulator::{Backend, Config};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind a free port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let base = format!("http://{addr}");
        let tag = format!("{:08x}", rand::random::<u32>());
        let (cfg_backend, data_dir, aws, moto) = match backend {
            LocalBackend::Embedded => {
                let dir = std::env::temp_dir().join(format!("stackhouse-load-{tag}"));
                (Backend::Embedded, Some(dir), None, None)
            }
            LocalBackend::Moto => {
                let (endpoint, guard) = match std::env::var("STACKHOUSE_MOTO_ENDPOINT") {
                    Ok(e) if !e.is_empty() => (e, None),
                    _ => {
                        let m = crate::moto::MotoServer::start();
                        (m.endpoint.clone(), Some(m))
                    }
                };
                // Resource names are per run, so runs never see each other's items.
                let name: &'static str = Box::leak(format!("load{tag}").into_boxed_str());
                let cfg = crate::moto::aws_config_for(&endpoint, name);
                stackhouse::adapters::aws::provision(&cfg)
                    .await
                    .map_err(|e| format!("provision AWS resources on moto: {e}"))?;
                (Backend::Aws, None, Some(cfg), guard)
            }
        };
        let config = Config {
            listen: addr,
            data_dir: data_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("unused")),
            backend: cfg_backend,
            aws_endpoint_url: None,
            aws,
            settings,
        };
        let (app, verifier) =
            local_emulator::build_app(&config, &base).await.map_err(|e| e.to_string())?;
        let (ports, counters) = counting::wrap(app.ports.clone());
        let app = stackhouse::App::new(ports, app.settings.clone());
        let org = "loadgen".to_string();
        let token = format!("pul-load-{tag}{:08x}", rand::random::<u32>());
        let b = local_emulator::bootstrap::Bootstrap {
            token: Some(token.clone()),
            user: org.clone(),
            org: org.clone(),
        };
        local_emulator::bootstrap::run(&app, &b).await.map_err(|e| format!("bootstrap: {e}"))?;
        let server = local_emulator::server::serve(listener, app.clone(), verifier)?;
        Ok(LocalServer {
            endpoint: Endpoint { base, token, org },
            counters,
            app,
            server: Some(server),
            data_dir,
            _moto: moto,
        })
    }

    /// Stops the server and removes its data.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        if let Some(d) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

// ----------------------------------------------------------------------------------------
// Reports
// ----------------------------------------------------------------------------------------

fn mb(bytes: u64) -> String {
    if bytes >= 10 << 20 {
        format!("{:.0} MB", bytes as f64 / (1 << 20) as f64)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.0} KB", bytes as f64 / 1024.0)
    }
}

fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

impl Report {
    /// A title line for the run.
    pub fn title(&self) -> String {
        let s = &self.scenario;
        let pad = if s.pad_bytes > 0 {
            format!(", resources padded to ~{} KB", s.pad_bytes / 1024)
        } else {
            String::new()
        };
        format!(
            "{}: N = {}, mode {}{pad}, {} stack(s) in parallel{}",
            self.backend,
            s.n,
            mode_name(s.mode),
            s.stacks,
            if s.preview { "" } else { ", no previews" }
        )
    }

    /// The per-phase table (Markdown). Extrapolated values carry a `*`.
    pub fn phase_table(&self) -> String {
        let mut out = String::from(
            "| phase | steps | wall | requests | sent (wire) | DDB reads / writes (units) | DDB requests | S3 puts / gets | KMS | SQS | per resource step: DDB R/W units, S3 puts | $ per 1,000 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for p in &self.phases {
            let star = if p.sample_every > 1 { "*" } else { "" };
            let t = p.total_traffic();
            let (ops_cells, per_step, dollars) = match p.total_ops() {
                Some(o) => {
                    let per = if p.steps > 0 {
                        let k = (p.steps * self.scenario.stacks.max(1)) as f64;
                        format!(
                            "{:.1} / {:.1}, {:.2}",
                            o.meta_read_units as f64 / k,
                            o.meta_write_units as f64 / k,
                            o.blob_puts as f64 / k
                        )
                    } else {
                        "–".into()
                    };
                    let per_stack =
                        cost(&o, t.requests, &PRICES) / self.scenario.stacks.max(1) as f64;
                    (
                        format!(
                            "{} / {} | {} | {} / {} | {} | {}",
                            o.meta_read_units,
                            o.meta_write_units,
                            o.meta_requests(),
                            o.blob_puts,
                            o.blob_gets,
                            o.kms_calls,
                            o.queue_requests()
                        ),
                        per,
                        format!("{:.3}", per_stack * 1000.0),
                    )
                }
                None => ("– | – | – | – | –".into(), "–".into(), "–".into()),
            };
            out.push_str(&format!(
                "| {} | {} | {}{star} | {}{star} | {}{star} | {ops_cells} | {per_step} | {dollars} |\n",
                p.name,
                p.steps,
                ms(p.total_wall_ms()),
                t.requests,
                mb(t.sent_wire),
            ));
        }
        if let Some(p) = self.phases.iter().find(|p| p.sample_every > 1) {
            out.push_str(&format!(
                "\n\\* extrapolated: only every {}th checkpoint was sent (the final state always); each sent one is counted {} times.\n",
                p.sample_every, p.sample_every
            ));
        }
        out
    }

    /// The per-route latency table (Markdown).
    pub fn route_table(&self) -> String {
        let mut out = String::from(
            "| route | requests | p50 | p99 | max | mean body sent |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.routes {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.route,
                r.count,
                ms(r.p50_ms),
                ms(r.p99_ms),
                ms(r.max_ms),
                mb(r.mean_sent_wire)
            ));
        }
        out
    }

    /// The phase `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_follow_the_protocol_shapes() {
        let s = "/api/stacks/o/p/s";
        assert_eq!(route_label(&Method::POST, "/api/stacks/o/p"), "POST stack-create");
        assert_eq!(route_label(&Method::GET, s), "GET stack");
        assert_eq!(route_label(&Method::DELETE, &format!("{s}?force=false")), "DELETE stack");
        assert_eq!(route_label(&Method::GET, &format!("{s}/export")), "GET export");
        assert_eq!(
            route_label(&Method::POST, &format!("{s}/update")),
            "POST update-create (update)"
        );
        assert_eq!(route_label(&Method::POST, &format!("{s}/update/u1")), "POST update-start");
        assert_eq!(
            route_label(&Method::POST, &format!("{s}/update/u1/events/batch")),
            "POST events/batch"
        );
        assert_eq!(route_label(&Method::GET, "/api/capabilities"), "GET api/capabilities");
    }

    #[test]
    fn padded_resources_have_the_asked_size() {
        let plain = resource("dev", 1, 0).to_string().len();
        let padded = resource("dev", 1, 16 * 1024).to_string().len();
        assert!(padded - plain >= 16 * 1024, "{plain} → {padded}");
    }
}
