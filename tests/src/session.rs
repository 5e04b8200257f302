//! Plays the Pulumi CLI's update call sequence (docs/PROTOCOL-NOTES.md, Update lifecycle): create,
//! start, export, events, checkpoints, lease renewal, complete — exactly the paths, auth and gzip
//! the CLI uses.

use reqwest::Method;
use serde_json::{json, Value};

use crate::server::{Client, Reply};

/// A started update.
#[derive(Debug, Clone)]
pub struct Run {
    /// `/api/stacks/{o}/{p}/{s}/{kind}/{id}`.
    pub path: String,
    /// Update id.
    pub id: String,
    /// Lease token.
    pub token: String,
    /// Version announced by the start call.
    pub version: i64,
    /// The server answered `journalVersion: 1`.
    pub journal: bool,
}

/// The program request the CLI sends to create an update.
pub fn program(dry_run: bool) -> Value {
    json!({
        "name": "proj",
        "runtime": "nodejs",
        "main": "",
        "description": "",
        "options": {"localPolicyPackPaths": null, "color": "raw", "dryRun": dry_run, "parallel": 16,
                    "showConfig": false, "showReplacementSteps": false, "showNames": false,
                    "summary": false, "debug": false},
        "config": {"aws:region": {"string": "us-west-2", "secret": false, "object": false}},
        "metadata": {"message": "a message", "environment": {"git.head": "abc123", "exec.kind": "cli"}}
    })
}

/// `POST S/{kind}` then `POST S/{kind}/{id}` as a CLI with `PULUMI_DISABLE_JOURNALING=true`
/// (checkpoint persistence); returns the error reply of whichever call failed.
pub async fn create_and_start(
    c: &Client,
    stack_path: &str,
    kind: &str,
    dry_run: bool,
) -> Result<Run, Reply> {
    start_with(c, stack_path, kind, dry_run, false).await
}

/// Like [`create_and_start`], as a default CLI asking for journaling (`journalVersion: 1`).
/// Returns the run and whether the server turned journaling on.
pub async fn create_and_start_journal(c: &Client, stack_path: &str, kind: &str) -> (Run, bool) {
    let run = start_with(c, stack_path, kind, false, true).await.expect("journal update starts");
    let journal = run.journal;
    (run, journal)
}

/// Like [`create_and_start_journal`], returning the error reply instead of panicking.
pub async fn try_create_and_start_journal(
    c: &Client,
    stack_path: &str,
    kind: &str,
) -> Result<Run, Reply> {
    start_with(c, stack_path, kind, false, true).await
}

async fn start_with(
    c: &Client,
    stack_path: &str,
    kind: &str,
    dry_run: bool,
    journal: bool,
) -> Result<Run, Reply> {
    let created = c.post(&format!("{stack_path}/{kind}"), &program(dry_run)).await;
    if created.status != 200 {
        return Err(created);
    }
    let id = created.json()["updateID"].as_str().expect("updateID").to_string();
    // The CLI always sends the update path segment `update` for sub-resources
    // (docs/PROTOCOL-NOTES.md, Endpoints).
    let path = format!("{stack_path}/update/{id}");
    let mut start = json!({"tags": {"pulumi:project": "proj"}});
    if journal {
        start["journalVersion"] = json!(1);
    }
    let started = c.post(&path, &start).await;
    if started.status != 200 {
        return Err(started);
    }
    let v = started.json();
    Ok(Run {
        path,
        id,
        token: v["token"].as_str().expect("token").to_string(),
        version: v["version"].as_i64().expect("version"),
        journal: v.get("journalVersion").and_then(Value::as_i64) == Some(1),
    })
}

impl Run {
    /// A call authenticated with the lease.
    pub async fn call(
        &self,
        c: &Client,
        method: Method,
        suffix: &str,
        body: Option<&Value>,
        gz: bool,
    ) -> Reply {
        self.call_with(c, &self.token, method, suffix, body, gz).await
    }

    /// A call with another lease token (to test refusals).
    pub async fn call_with(
        &self,
        c: &Client,
        token: &str,
        method: Method,
        suffix: &str,
        body: Option<&Value>,
        gz: bool,
    ) -> Reply {
        let body = body.map(|b| b.to_string().into_bytes());
        c.send_auth(
            method,
            &format!("{}{suffix}", self.path),
            Some(format!("update-token {token}")),
            body,
            gz,
        )
        .await
    }

    /// `PATCH …/checkpoint` with an `UntypedDeployment` (`{"version","features"?,"deployment"}`).
    pub async fn checkpoint(&self, c: &Client, untyped: &Value) -> Reply {
        let mut body = json!({"isInvalid": false, "version": untyped["version"], "deployment": untyped["deployment"]});
        if let Some(f) = untyped.get("features") {
            body["features"] = f.clone();
        }
        self.call(c, Method::PATCH, "/checkpoint", Some(&body), true).await
    }

    /// `POST …/events/batch`.
    pub async fn events(&self, c: &Client, events: &[Value]) -> Reply {
        self.call(c, Method::POST, "/events/batch", Some(&json!({"events": events})), true).await
    }

    /// `POST …/renew_lease`.
    pub async fn renew(&self, c: &Client) -> Reply {
        self.call(
            c,
            Method::POST,
            "/renew_lease",
            Some(&json!({"token": "", "duration": 300})),
            false,
        )
        .await
    }

    /// `PATCH …/journalentries` (gzip, as the CLI sends it).
    pub async fn journal(&self, c: &Client, entries: &[Value]) -> Reply {
        self.call(c, Method::PATCH, "/journalentries", Some(&json!({"entries": entries})), true)
            .await
    }

    /// `POST …/complete`.
    pub async fn complete(&self, c: &Client, status: &str) -> Reply {
        self.call(c, Method::POST, "/complete", Some(&json!({"status": status})), false).await
    }
}

/// Sends events the way the CLI does: batches of at most 50.
pub async fn send_events(c: &Client, run: &Run, events: &[Value]) {
    for chunk in events.chunks(50) {
        let r = run.events(c, chunk).await;
        assert!(r.status.is_success(), "events batch: {r:?}");
    }
}

/// A complete `pulumi up` (preview, then the update) persisting `final_state` with full
/// checkpoints, sending `events`. Returns the update run.
pub async fn up(c: &Client, stack_path: &str, events: &[Value], states: &[Value]) -> Run {
    let preview = create_and_start(c, stack_path, "update", true).await.expect("preview starts");
    assert_eq!(c.get(&format!("{stack_path}/export")).await.status, 200);
    send_events(c, &preview, events).await;
    assert!(preview.complete(c, "succeeded").await.status.is_success());

    let run = create_and_start(c, stack_path, "update", false).await.expect("update starts");
    assert_eq!(c.get(&format!("{stack_path}/export")).await.status, 200);
    assert_eq!(c.get(stack_path).await.status, 200);
    send_events(c, &run, events).await;
    for state in states {
        let r = run.checkpoint(c, state).await;
        assert!(r.status.is_success(), "checkpoint: {r:?}");
    }
    assert!(run.renew(c).await.status.is_success());
    let r = run.complete(c, "succeeded").await;
    assert!(r.status.is_success(), "complete: {r:?}");
    run
}

/// How the CLI persists state during an update (docs/PROTOCOL-NOTES.md, Checkpoints and Journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Journal entries (the CLI default: `journalVersion: 1` accepted by the server).
    Journal,
    /// `PULUMI_DISABLE_JOURNALING=true` with the delta capability: verbatim, then deltas.
    VerbatimDelta,
    /// `PULUMI_OPTIMIZED_CHECKPOINT_PATCH=false`: full `PATCH checkpoint` every time.
    Full,
}

/// One text edit replacing the differing middle of `prev` with that of `next` (a valid,
/// if coarse, gotextdiff delta: byte offsets into `prev`).
pub fn coarse_delta(prev: &str, next: &str) -> Value {
    let (p, n) = (prev.as_bytes(), next.as_bytes());
    let prefix = p.iter().zip(n).take_while(|(a, b)| a == b).count();
    let max_suffix = p.len().min(n.len()) - prefix;
    let suffix =
        p.iter().rev().zip(n.iter().rev()).take(max_suffix).take_while(|(a, b)| a == b).count();
    // Keep the replacement on character boundaries of `next` so it is valid UTF-8 text.
    let mut start = prefix;
    while !next.is_char_boundary(start) {
        start -= 1;
    }
    let mut end_next = n.len() - suffix;
    while !next.is_char_boundary(end_next) {
        end_next += 1;
    }
    let end_prev = p.len() - (n.len() - end_next);
    let pos = |o: usize| json!({"line": 1, "column": 1, "offset": o});
    json!([{ "Span": {"uri": "", "start": pos(start), "end": pos(end_prev)}, "NewText": &next[start..end_next] }])
}

/// Journal entries turning the deployment `base` into `next`, as the engine's steps would:
/// every resource of `next`, in order, is a step (same/update replaces its base entry, create
/// is new), and base resources missing from `next` are deleted.
pub fn journal_between(base: &Value, next: &Value) -> Vec<Value> {
    let empty = vec![];
    let old = base["deployment"]["resources"].as_array().unwrap_or(&empty);
    let new = next["deployment"]["resources"].as_array().unwrap_or(&empty);
    let index: std::collections::HashMap<&str, usize> =
        old.iter().enumerate().filter_map(|(i, r)| r["urn"].as_str().map(|u| (u, i))).collect();
    let mut entries = Vec::new();
    let mut seq = 0;
    let mut op = 0;
    let mut push = |entries: &mut Vec<Value>, mut e: Value| {
        seq += 1;
        e["version"] = json!(1);
        e["sequenceID"] = json!(seq);
        for k in ["removeOld", "removeNew"] {
            if e.get(k).is_none() {
                e[k] = Value::Null;
            }
        }
        entries.push(e);
    };
    if let Some(sp) = next["deployment"].get("secrets_providers") {
        push(&mut entries, json!({"kind": 6, "operationID": 0, "secretsProvider": sp}));
    }
    for r in new {
        op += 1;
        match r["urn"].as_str().and_then(|u| index.get(u)) {
            Some(&i) => {
                push(
                    &mut entries,
                    json!({"kind": 0, "operationID": op, "operation": {"resource": r, "type": "updating"}}),
                );
                push(
                    &mut entries,
                    json!({"kind": 1, "operationID": op, "state": r, "removeOld": i}),
                );
            }
            None => {
                push(
                    &mut entries,
                    json!({"kind": 0, "operationID": op, "operation": {"resource": r, "type": "creating"}}),
                );
                push(&mut entries, json!({"kind": 1, "operationID": op, "state": r}));
            }
        }
    }
    let kept: std::collections::HashSet<&str> =
        new.iter().filter_map(|r| r["urn"].as_str()).collect();
    for (i, r) in old.iter().enumerate() {
        if !r["urn"].as_str().is_some_and(|u| kept.contains(u)) {
            op += 1;
            push(
                &mut entries,
                json!({"kind": 0, "operationID": op, "operation": {"resource": r, "type": "deleting"}}),
            );
            push(&mut entries, json!({"kind": 1, "operationID": op, "removeOld": i}));
        }
    }
    entries
}

/// Persists a sequence of states during one update in the given mode, as the CLI does.
pub struct Persister {
    mode: Mode,
    cutoff: usize,
    seq: i64,
    prev_raw: Option<String>,
    base: Value,
    /// Deltas the server accepted (the rest went verbatim).
    pub deltas_accepted: usize,
}

impl Persister {
    /// A persister for an update whose base deployment is `base` (what `GET S/export` gave).
    pub async fn new(c: &Client, mode: Mode, base: Value) -> Persister {
        let caps = c.get("/api/capabilities").await.json();
        let cutoff = caps["capabilities"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["capability"] == "delta-checkpoint-uploads-v2"))
            .and_then(|x| x["configuration"]["checkpointCutoffSizeBytes"].as_u64())
            .unwrap_or(u64::MAX) as usize;
        Persister::with_cutoff(mode, cutoff, base)
    }

    /// A persister for a client that already read the capabilities: `cutoff` is the
    /// `checkpointCutoffSizeBytes` of `delta-checkpoint-uploads-v2` (`usize::MAX` without it).
    pub fn with_cutoff(mode: Mode, cutoff: usize, base: Value) -> Persister {
        Persister { mode, cutoff, seq: 1, prev_raw: None, base, deltas_accepted: 0 }
    }

    /// Saves `untyped` (an `UntypedDeployment`). In journal mode only the final state of the
    /// update matters, so call `save` once with it.
    pub async fn save(&mut self, c: &Client, run: &Run, untyped: &Value) {
        match self.mode {
            Mode::Full => {
                let r = run.checkpoint(c, untyped).await;
                assert!(r.status.is_success(), "checkpoint: {r:?}");
            }
            Mode::Journal => {
                for batch in journal_between(&self.base, untyped).chunks(100) {
                    let r = run.journal(c, batch).await;
                    assert!(r.status.is_success(), "journal: {r:?}");
                }
            }
            Mode::VerbatimDelta => {
                let raw = untyped.to_string();
                let use_delta = self
                    .prev_raw
                    .as_ref()
                    .is_some_and(|p| p.len() >= self.cutoff && raw.len() >= self.cutoff);
                let lease = Some(format!("update-token {}", run.token));
                let ok = if use_delta {
                    let prev = self.prev_raw.as_deref().unwrap_or_default();
                    let hash = stackhouse::service::delta::sha256_hex(raw.as_bytes());
                    let body = json!({"version": untyped["version"], "checkpointHash": hash, "sequenceNumber": self.seq, "deploymentDelta": coarse_delta(prev, &raw)});
                    let r = c
                        .send_auth(
                            Method::PATCH,
                            &format!("{}/checkpointdelta", run.path),
                            lease.clone(),
                            Some(body.to_string().into_bytes()),
                            true,
                        )
                        .await;
                    self.deltas_accepted += usize::from(r.status.is_success());
                    r.status.is_success()
                } else {
                    false
                };
                if !ok {
                    let body = format!(
                        r#"{{"version":{},"untypedDeployment":{raw},"sequenceNumber":{}}}"#,
                        untyped["version"], self.seq
                    );
                    let r = c
                        .send_auth(
                            Method::PATCH,
                            &format!("{}/checkpointverbatim", run.path),
                            lease,
                            Some(body.into_bytes()),
                            true,
                        )
                        .await;
                    assert!(r.status.is_success(), "verbatim: {r:?}");
                }
                self.prev_raw = Some(raw);
                self.seq += 1;
            }
        }
    }
}
