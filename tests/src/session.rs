//! Plays the Pulumi CLI's update call sequence (PROTOCOL.md §1.3): create, start, export,
//! events, checkpoints, lease renewal, complete — exactly the paths, auth and gzip the CLI uses.

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
    // The CLI always sends the update path segment `update` for sub-resources (PROTOCOL.md §1).
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
