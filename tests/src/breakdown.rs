//! Where the time of the hot request goes (`loadgen breakdown`, docs/BENCHMARKS.md, "Slowest
//! part of the request path"): one `PATCH …/checkpoint` of an N-resource deployment, timed end
//! to end against an in-process server, and each stage the server runs for it timed alone with
//! the same library functions the handler calls (`api::handlers::updates::checkpoint`:
//! gunzip the body, parse it, count the resources, rebuild the untyped bytes, gzip them, put
//! the blob). What the stages do not explain is HTTP, routing, authentication and the lease
//! check.

use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use stackhouse::service::deployments;

use crate::load::{LocalServer, Result};
use crate::server::{gzip, Client};
use crate::session;

/// One timed stage.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// What runs.
    pub name: &'static str,
    /// Where it runs: `client` or `server`.
    pub side: &'static str,
    /// Median over the runs, ms.
    pub ms: f64,
}

/// The breakdown of one request shape.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// Resources in the deployment.
    pub n: usize,
    /// Bytes of the request body before and after gzip.
    pub raw_bytes: usize,
    /// … after gzip.
    pub gzip_bytes: usize,
    /// The stages, in request order.
    pub stages: Vec<Stage>,
    /// The whole request as the client sees it once its body is gzipped (server stages + HTTP +
    /// dispatch), median ms.
    pub end_to_end_ms: f64,
    /// A tiny lease call (`renew_lease`) on the same server: HTTP + dispatch + lease check +
    /// one write, median ms.
    pub small_call_ms: f64,
}

#[derive(serde::Deserialize)]
struct CheckpointRequest<'a> {
    version: i64,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(borrow)]
    deployment: &'a RawValue,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

/// Times a full checkpoint of `n` resources (`pad` bytes of padding each), `runs` times.
pub async fn checkpoint(
    server: &LocalServer,
    n: usize,
    pad: usize,
    runs: usize,
) -> Result<Breakdown> {
    let ep = &server.endpoint;
    let stack = format!("breakdown-{:08x}", rand::random::<u32>());
    let resources: Vec<Value> = (0..n).map(|i| crate::load::resource(&stack, i, pad)).collect();
    let deployment = json!({"manifest": {"time": "2026-11-23T00:00:00Z", "magic": "", "version": "v3.200.0"}, "resources": resources});
    let body = json!({"isInvalid": false, "version": 3, "deployment": deployment});

    let mut stages = Vec::new();
    let raw = body.to_string().into_bytes();
    stages.push(Stage {
        name: "serialise the deployment (JSON)",
        side: "client",
        ms: time(runs, || body.to_string()),
    });
    let gz = gzip(&raw);
    stages.push(Stage {
        name: "gzip the body (default level)",
        side: "client",
        ms: time(runs, || gzip(&raw)),
    });

    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
    let limit = server.app.settings.max_decoded_bytes;
    let gz_bytes = Bytes::from(gz.clone());
    stages.push(Stage {
        name: "gunzip the body (api::body::decode)",
        side: "server",
        ms: time(runs, || stackhouse::api::body::decode(&headers, gz_bytes.clone(), limit)),
    });
    stages.push(Stage {
        name: "parse the request (RawValue deployment)",
        side: "server",
        ms: time(runs, || {
            stackhouse::api::body::parse_json::<CheckpointRequest>(&raw).map(|r| r.version)
        }),
    });
    let req: CheckpointRequest =
        stackhouse::api::body::parse_json(&raw).map_err(|e| e.to_string())?;
    stages.push(Stage {
        name: "validate + count resources (deployments::check_parts)",
        side: "server",
        ms: time(runs, || {
            deployments::check_parts(req.version, req.features.as_deref(), req.deployment, 3..=4)
                .map(|s| s.resource_count)
        }),
    });
    // Stored as the client compressed it (`deployments::as_received`): the server neither
    // rebuilds the deployment's bytes nor compresses them again.
    let stored = gz_bytes.clone();
    let blobs = server.app.ports.blobs.clone();
    let mut puts = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        blobs
            .put(&format!("breakdown/{stack}/{i}.json.gz"), stored.clone())
            .await
            .map_err(|e| format!("blob put: {e}"))?;
        puts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stages.push(Stage {
        name: "store the blob as received (BlobStore::put)",
        side: "server",
        ms: median(puts),
    });

    // The real request, end to end, on a started update.
    let recorder = std::sync::Arc::new(crate::load::Recorder::default());
    let c = Client::recording(&ep.base, &ep.token, recorder);
    let path = format!("/api/stacks/{}/loadgen/{stack}", ep.org);
    let r = c.post(&format!("/api/stacks/{}/loadgen", ep.org), &json!({"stackName": stack})).await;
    if !r.status.is_success() {
        return Err(format!("create stack: HTTP {}", r.status));
    }
    let run = session::create_and_start(&c, &path, "update", false)
        .await
        .map_err(|r| format!("start: HTTP {}", r.status))?;
    let mut e2e = Vec::new();
    let mut small = Vec::new();
    // The body goes out already gzipped, so the timing holds no client-side compression.
    let http = reqwest::Client::new();
    let url = format!("{}{}/checkpoint", ep.base, run.path);
    for _ in 0..runs {
        let t = Instant::now();
        let r = http
            .patch(&url)
            .header("Authorization", format!("update-token {}", run.token))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .header("Accept-Encoding", "gzip")
            .body(gz.clone())
            .send()
            .await
            .map_err(|e| format!("checkpoint: {e}"))?;
        let status = r.status();
        let _ = r.bytes().await;
        if !status.is_success() {
            return Err(format!("checkpoint: HTTP {status}"));
        }
        e2e.push(t.elapsed().as_secs_f64() * 1000.0);
        let t3 = Instant::now();
        let r = run.renew(&c).await;
        if !r.status.is_success() {
            return Err(format!("renew: HTTP {}", r.status));
        }
        small.push(t3.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = run.complete(&c, "succeeded").await;
    Ok(Breakdown {
        n,
        raw_bytes: raw.len(),
        gzip_bytes: gz.len(),
        stages,
        end_to_end_ms: median(e2e),
        small_call_ms: median(small),
    })
}

impl Breakdown {
    /// Markdown table.
    pub fn table(&self, backend: &str) -> String {
        let server: f64 = self.stages.iter().filter(|s| s.side == "server").map(|s| s.ms).sum();
        let mut out = format!(
            "`PATCH checkpoint`, {} resources, body {:.2} MB ({:.3} MB gzip), {backend} backend:\n\n| stage | side | median |\n|---|---|---|\n",
            self.n,
            self.raw_bytes as f64 / 1e6,
            self.gzip_bytes as f64 / 1e6
        );
        for s in &self.stages {
            let share = if s.side == "server" && self.end_to_end_ms > 0.0 {
                format!(" ({:.0}% of the request)", 100.0 * s.ms / self.end_to_end_ms)
            } else {
                String::new()
            };
            out.push_str(&format!("| {} | {} | {:.1} ms{share} |\n", s.name, s.side, s.ms));
        }
        out.push_str(&format!(
            "| **the request, end to end** (body already gzipped) | both | **{:.1} ms** |\n| server stages above, summed | server | {:.1} ms |\n| rest: HTTP transfer, routing, authentication, lease check | both | {:.1} ms |\n| for scale: a tiny lease call (`renew_lease`) | both | {:.1} ms |\n",
            self.end_to_end_ms,
            server,
            (self.end_to_end_ms - server).max(0.0),
            self.small_call_ms
        ));
        out
    }
}
