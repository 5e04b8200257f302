//! One CLI session on one stack, phase by phase: stack create, `up`s with previews, export,
//! destroy, `stack rm`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stackhouse::adapters::counting::{Counters, OpCounts};

use crate::server::Client;
use crate::session::{self, Mode, Persister, Run};

use super::prices::{add_ops, scale_ops};
use super::recorder::{Recorder, Traffic};
use super::report::Report;
use super::scenario::{check, json_of, mode_name, Endpoint, Phase, Result, Scenario};

pub(super) const PROJECT: &str = "loadgen";

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

pub(super) enum Step {
    Same,
    Create(Value),
    Delete,
}

/// Sends engine events as the CLI does: batches of at most 50, up to 3 in flight.
pub(super) struct EventSender {
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

pub(super) fn step_event(op: &str, r: &Value, planning: bool, outputs: bool) -> Value {
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
pub(super) struct SampleCost {
    wall: Duration,
    traffic: Traffic,
    ops: OpCounts,
    sample_every: usize,
}

/// One stack's session.
pub(super) struct Session {
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

pub(super) async fn renew_if_due(
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

pub(super) fn op_name(step: &Step) -> &'static str {
    match step {
        Step::Same => "same",
        Step::Create(_) => "create",
        Step::Delete => "delete",
    }
}

pub(super) fn summary(steps: &[(Step, Value)], preview: bool) -> Value {
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
        server: None,
    })
}

pub(super) async fn phase(s: &mut Session, name: &str, org: &str) -> Result<SampleCost> {
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
