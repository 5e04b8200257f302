//! Deployment runs from request to runner (`loadgen deploy`): `n` runs of one stack, one after
//! the other, each `POST …/deployments` then its status polled every millisecond until it
//! ends. Reports, p50/p99: request → `accepted` (the queue's delivery, the stack's slot, the
//! run's token, the launcher's start), `accepted` → `running` (the runner's start-up: a new
//! process that claims its run over HTTP), and request → `running` (queue to running, what a
//! user waits before the first log line). The runs' source is a local git repository and
//! their only work a pre-run command (`true`); the operation itself is not what is measured
//! (without a `pulumi` on the runner's PATH the run fails at that step, which is fine here).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::report::p50_p99;
use super::scenario::{Endpoint, Result};

/// What one run of the bench measured, in milliseconds.
#[derive(Debug, Clone)]
pub struct DeployLatency {
    pub n: usize,
    /// Request → `accepted`: p50, p99.
    pub accepted_ms: (f64, f64),
    /// `accepted` → `running`: p50, p99.
    pub startup_ms: (f64, f64),
    /// Request → `running`: p50, p99.
    pub running_ms: (f64, f64),
}

const PROJECT: &str = "loadgen-deploy";

async fn call(
    http: &reqwest::Client,
    ep: &Endpoint,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = http
        .request(method.clone(), format!("{}{path}", ep.base))
        .header("Authorization", format!("token {}", ep.token))
        .header("Accept", "application/vnd.pulumi+8");
    if !body.is_null() {
        req = req.json(&body);
    }
    let r = req.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("{method} {path}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{method} {path}: {status}: {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs the bench against `ep`, whose runners must be able to clone a `file://` repository
/// of this machine (an emulator here).
pub async fn measure(ep: &Endpoint, n: usize) -> Result<DeployLatency> {
    let http = reqwest::Client::new();
    let dir = std::env::temp_dir().join(format!("loadgen-deploy-{:016x}", rand::random::<u64>()));
    let repo = crate::git::repo_with(&dir, "main", &[("README.md", "no program\n")]);
    let org = &ep.org;
    let stack = format!("dev{:08x}", rand::random::<u32>());
    call(&http, ep, "POST", &format!("/api/stacks/{org}/{PROJECT}"), json!({"stackName": stack}))
        .await?;
    let s = format!("/api/stacks/{org}/{PROJECT}/{stack}");
    let settings = json!({
        "sourceContext": {"git": {"repoUrl": format!("file://{}", repo.display())}},
        "operationContext": {"preRunCommands": ["true"],
                             "options": {"skipInstallDependencies": true}}
    });
    call(&http, ep, "PUT", &format!("{s}/deployments/settings"), settings).await?;
    let (mut accepted, mut startup, mut running) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let t0 = Instant::now();
        let made =
            call(&http, ep, "POST", &format!("{s}/deployments"), json!({"operation": "preview"}))
                .await?;
        let id = made["id"].as_str().ok_or("no run id")?.to_string();
        let (mut at_accepted, mut at_running) = (None, None);
        loop {
            let status =
                call(&http, ep, "GET", &format!("/api/deployments/{id}/status"), Value::Null)
                    .await?;
            let now = t0.elapsed();
            match status.as_str().unwrap_or_default() {
                "accepted" => {
                    at_accepted.get_or_insert(now);
                }
                "running" => {
                    at_accepted.get_or_insert(now);
                    at_running.get_or_insert(now);
                }
                "succeeded" | "failed" => {
                    at_accepted.get_or_insert(now);
                    at_running.get_or_insert(now);
                    break;
                }
                _ => {}
            }
            if t0.elapsed() > Duration::from_secs(120) {
                return Err(format!("run {id} did not end in 2 minutes"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (a, r) = (at_accepted.unwrap_or_default(), at_running.unwrap_or_default());
        accepted.push(a.as_secs_f64() * 1e3);
        startup.push(r.saturating_sub(a).as_secs_f64() * 1e3);
        running.push(r.as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(DeployLatency {
        n,
        accepted_ms: p50_p99(accepted),
        startup_ms: p50_p99(startup),
        running_ms: p50_p99(running),
    })
}

/// The Markdown row of one bench run.
pub fn row(r: &DeployLatency, label: &str) -> String {
    let ms = |(p50, p99): (f64, f64)| format!("{p50:.1} / {p99:.1} ms");
    format!(
        "| {label} | {} | {} | {} | {} |",
        r.n,
        ms(r.accepted_ms),
        ms(r.startup_ms),
        ms(r.running_ms)
    )
}

/// The header of [`row`]s.
pub const HEADER: &str = "| server | runs | request → accepted (p50 / p99) | accepted → running: runner start-up | request → running |\n|---|---:|---:|---:|---:|";
