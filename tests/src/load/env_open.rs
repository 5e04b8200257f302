//! Opening an environment (`loadgen env`): a root environment importing `imports` others of
//! `values` values each (a tenth of them secrets), opened `n` times the way `pulumi env open`
//! does it (`POST …/open`, then `GET …/open/{id}`), one at a time, after a warm-up. Reports
//! p50/p99 of both calls, the storage operations one open costs, and what 1,000 opens cost at
//! AWS list prices (issue 19's bench).

use std::time::Instant;

use stackhouse::adapters::counting::{Counters, OpCounts};

use super::prices::{cost, PRICES};
use super::report::percentile;
use super::scenario::{Endpoint, Result};

/// What one run measured.
#[derive(Debug, Clone)]
pub struct EnvOpen {
    pub n: usize,
    /// `POST …/open` p50 and p99, milliseconds.
    pub open_ms: (f64, f64),
    /// `GET …/open/{id}` p50 and p99, milliseconds.
    pub read_ms: (f64, f64),
    /// Storage operations of all `n` timed opens (both calls), when the server's counters
    /// were given.
    pub ops: Option<OpCounts>,
    /// Size of the opened environment's JSON.
    pub bytes: usize,
}

const WARM_UP: usize = 20;
const PROJECT: &str = "loadgen-env";

async fn call(
    http: &reqwest::Client,
    ep: &Endpoint,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> Result<String> {
    let mut req = http
        .request(method.clone(), format!("{}{path}", ep.base))
        .header("Authorization", format!("token {}", ep.token))
        .header("Accept", "application/vnd.pulumi+8")
        .header("Content-Type", "application/json");
    if let Some(b) = body {
        req = req.body(b);
    }
    let r = req.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("{method} {path}: {e}"))?;
    if !status.is_success() && status != reqwest::StatusCode::CONFLICT {
        return Err(format!("{method} {path}: {status}: {text}"));
    }
    Ok(text)
}

async fn define(http: &reqwest::Client, ep: &Endpoint, name: &str, yaml: String) -> Result<()> {
    let org = &ep.org;
    let body = serde_json::json!({"project": PROJECT, "name": name}).to_string();
    call(http, ep, reqwest::Method::POST, &format!("/api/esc/environments/{org}"), Some(body))
        .await?;
    let path = format!("/api/esc/environments/{org}/{PROJECT}/{name}");
    call(http, ep, reqwest::Method::PATCH, &path, Some(yaml)).await?;
    Ok(())
}

/// Sets up the environments and opens the root `n` times.
pub async fn measure(
    ep: &Endpoint,
    imports: usize,
    values: usize,
    n: usize,
    counters: Option<&Counters>,
) -> Result<EnvOpen> {
    let http = reqwest::Client::builder().build().map_err(|e| e.to_string())?;
    let mut root = String::from("imports:\n");
    for i in 0..imports {
        let mut yaml = String::from("values:\n");
        for j in 0..values {
            if j % 10 == 0 {
                yaml.push_str(&format!("  key{j}: {{fn::secret: secret-{i}-{j}}}\n"));
            } else {
                yaml.push_str(&format!("  key{j}: value-{i}-{j}\n"));
            }
        }
        yaml.push_str(&format!("  base{i}:\n    name: base-{i}\n    size: {values}\n"));
        define(&http, ep, &format!("base-{i}"), yaml).await?;
        root.push_str(&format!("  - {PROJECT}/base-{i}\n"));
    }
    root.push_str("values:\n  environmentVariables:\n    FIRST: ${key1}\n    SECRET: ${key0}\n");
    root.push_str("  pulumiConfig:\n    joined: ${key1}-${key2}\n");
    define(&http, ep, "root", root).await?;

    let org = &ep.org;
    let open_path = format!("/api/esc/environments/{org}/{PROJECT}/root/open?duration=2h0m0s");
    let mut opens = Vec::with_capacity(n);
    let mut reads = Vec::with_capacity(n);
    let mut before = None;
    let mut bytes = 0;
    for round in 0..WARM_UP + n {
        if round == WARM_UP {
            before = counters.map(Counters::snapshot);
        }
        let started = Instant::now();
        let opened = call(&http, ep, reqwest::Method::POST, &open_path, None).await?;
        let open_ms = started.elapsed().as_secs_f64() * 1000.0;
        let id: serde_json::Value = serde_json::from_str(&opened).map_err(|e| e.to_string())?;
        let id = id["id"].as_str().ok_or("open answered no id")?.to_string();
        let started = Instant::now();
        let read_path = format!("/api/esc/environments/{org}/{PROJECT}/root/open/{id}");
        let body = call(&http, ep, reqwest::Method::GET, &read_path, None).await?;
        let read_ms = started.elapsed().as_secs_f64() * 1000.0;
        if round >= WARM_UP {
            opens.push(open_ms);
            reads.push(read_ms);
            bytes = body.len();
        }
    }
    let ops = counters.zip(before).map(|(c, b)| c.snapshot() - b);
    opens.sort_by(f64::total_cmp);
    reads.sort_by(f64::total_cmp);
    Ok(EnvOpen {
        n,
        open_ms: (percentile(&opens, 0.5), percentile(&opens, 0.99)),
        read_ms: (percentile(&reads, 0.5), percentile(&reads, 0.99)),
        ops,
        bytes,
    })
}

/// The report's table.
pub fn table(r: &EnvOpen, imports: usize, values: usize) -> String {
    let mut out = format!(
        "Open of an environment importing {imports} others of {values} values each ({} KB opened), {} times:\n\n| call | p50 | p99 |\n|---|---:|---:|\n| `POST …/open` | {:.2} ms | {:.2} ms |\n| `GET …/open/{{id}}` | {:.2} ms | {:.2} ms |\n",
        r.bytes / 1024,
        r.n,
        r.open_ms.0,
        r.open_ms.1,
        r.read_ms.0,
        r.read_ms.1
    );
    if let Some(ops) = &r.ops {
        let per = |v: u64| v as f64 / r.n.max(1) as f64;
        out.push_str(&format!(
            "\nPer open (both calls): metadata {:.2} gets, {:.2} queries, {:.2} writes ({:.2} read / {:.2} write units); blobs {:.2} gets; KMS {:.3} calls. $ per 1,000 opens at list prices (requests included): {:.4}\n",
            per(ops.meta_gets),
            per(ops.meta_queries),
            per(ops.meta_puts + ops.meta_transactions + ops.meta_deletes),
            per(ops.meta_read_units),
            per(ops.meta_write_units),
            per(ops.blob_gets),
            per(ops.kms_calls),
            cost(ops, 2 * r.n as u64, &PRICES) / r.n.max(1) as f64 * 1000.0
        ));
    }
    out
}
