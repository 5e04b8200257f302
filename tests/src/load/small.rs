//! Small requests, one at a time (`loadgen small`): `GET /api/capabilities`, `GET /api/user`
//! and `GET` of a stack, each `n` times in a row over one kept-alive connection after a
//! warm-up, timed from the request leaving the client to its body read. Issue 15's targets for
//! these are p50 ≤ 0.3 ms on loopback, and no durable write for a read on average.

use std::time::Instant;

use serde_json::json;

use stackhouse::adapters::counting::Counters;

use super::report::percentile;
use super::scenario::{Endpoint, Result};

/// One route's timings.
#[derive(Debug, Clone)]
pub struct SmallRow {
    /// The route, as the report names it.
    pub label: &'static str,
    /// Requests timed.
    pub n: usize,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p90_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// Metadata reads and writes per request, when the server's counters were given.
    pub per_request: Option<(f64, f64)>,
}

/// Requests sent before timing, per route.
const WARM_UP: usize = 200;

async fn get(http: &reqwest::Client, ep: &Endpoint, path: &str) -> Result<()> {
    let r = http
        .get(format!("{}{path}", ep.base))
        .header("Authorization", format!("token {}", ep.token))
        .header("Accept", "application/vnd.pulumi+8")
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = r.status();
    r.bytes().await.map_err(|e| format!("GET {path}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {path}: {status}"));
    }
    Ok(())
}

/// Times the three routes `n` times each (a stack `loadgen-small/dev` is created if absent).
pub async fn measure(
    ep: &Endpoint,
    n: usize,
    counters: Option<&Counters>,
) -> Result<Vec<SmallRow>> {
    let http = reqwest::Client::builder().build().map_err(|e| e.to_string())?;
    let project = format!("/api/stacks/{}/loadgen-small", ep.org);
    let created = http
        .post(format!("{}{project}", ep.base))
        .header("Authorization", format!("token {}", ep.token))
        .header("Accept", "application/vnd.pulumi+8")
        .json(&json!({"stackName": "dev"}))
        .send()
        .await
        .map_err(|e| format!("POST {project}: {e}"))?;
    if !(created.status().is_success() || created.status() == reqwest::StatusCode::CONFLICT) {
        return Err(format!("POST {project}: {}", created.status()));
    }
    let stack = format!("{project}/dev");
    let mut rows = Vec::new();
    for (label, path) in [
        ("GET capabilities", "/api/capabilities"),
        ("GET user", "/api/user"),
        ("GET stack", stack.as_str()),
    ] {
        for _ in 0..WARM_UP {
            get(&http, ep, path).await?;
        }
        let before = counters.map(Counters::snapshot);
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            get(&http, ep, path).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let per_request = counters.zip(before).map(|(c, b)| {
            let d = c.snapshot() - b;
            let reads = (d.meta_gets + d.meta_queries) as f64 / n as f64;
            let writes = (d.meta_puts + d.meta_deletes + d.meta_transactions) as f64 / n as f64;
            (reads, writes)
        });
        times.sort_by(f64::total_cmp);
        rows.push(SmallRow {
            label,
            n,
            p50_ms: percentile(&times, 0.5),
            p90_ms: percentile(&times, 0.9),
            p99_ms: percentile(&times, 0.99),
            per_request,
        });
    }
    Ok(rows)
}
