//! Publishing policy packs (`loadgen artifacts`): `n` versions of one pack whose archive is the
//! same every time, then `n` versions whose archives all differ, each the way `pulumi policy
//! publish` does it (`POST …/policypacks`, `PUT` of the archive to the upload URL, `POST
//! …/complete`), one at a time. Reports the publish time, the bytes stored (in-process: what is
//! under `artifacts/`), the storage operations one publish costs and $ per 1,000 publishes at
//! AWS list prices (issue 20's bench).

use std::time::Instant;

use stackhouse::adapters::counting::{Counters, OpCounts};
use stackhouse::service::artifacts::STORED_PREFIX;

use super::prices::{cost, PRICES};
use super::report::percentile;
use super::scenario::{Endpoint, Result};

/// One series of publishes.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: &'static str,
    pub n: usize,
    /// One archive's size.
    pub archive_bytes: usize,
    /// Publish (all three calls) p50 and p99, milliseconds.
    pub publish_ms: (f64, f64),
    /// Bytes under `artifacts/` after the series, when the server is in-process.
    pub stored_bytes: Option<u64>,
    /// Objects under `artifacts/` after the series.
    pub stored_objects: Option<usize>,
    /// Storage operations of the series, when the server's counters were given.
    pub ops: Option<OpCounts>,
}

/// A pseudo-random archive of `size` bytes (incompressible, like a real .tgz), distinct per seed.
fn archive(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn api(
    http: &reqwest::Client,
    ep: &Endpoint,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let r = http
        .post(format!("{}{path}", ep.base))
        .header("Authorization", format!("token {}", ep.token))
        .header("Accept", "application/vnd.pulumi+8")
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("POST {path}: {e}"))?;
    if !status.is_success() {
        return Err(format!("POST {path}: {status}: {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

async fn publish(
    http: &reqwest::Client,
    ep: &Endpoint,
    pack: &str,
    tag: &str,
    bytes: &[u8],
) -> Result<()> {
    let org = &ep.org;
    let req = serde_json::json!({"name": pack, "displayName": pack, "versionTag": tag,
        "runtime": "python",
        "policies": [{"name": "p", "displayName": "p", "description": "d",
                      "enforcementLevel": "mandatory", "message": ""}]});
    let started = api(http, ep, &format!("/api/orgs/{org}/policypacks"), req).await?;
    let url = started["uploadURI"].as_str().ok_or("publish answered no uploadURI")?;
    let put = http.put(url).body(bytes.to_vec()).send().await.map_err(|e| e.to_string())?;
    if !put.status().is_success() {
        return Err(format!("PUT upload: {}", put.status()));
    }
    let done = format!("/api/orgs/{org}/policypacks/{pack}/versions/{tag}/complete");
    api(http, ep, &done, serde_json::Value::Null).await?;
    Ok(())
}

async fn stored(app: &stackhouse::App) -> Result<(u64, usize)> {
    let (mut bytes, mut objects, mut after) = (0u64, 0usize, None);
    loop {
        let page = app.ports.blobs.list(STORED_PREFIX, after).await.map_err(|e| e.to_string())?;
        for key in &page.keys {
            let blob = app.ports.blobs.get(key).await.map_err(|e| e.to_string())?;
            bytes += blob.map_or(0, |b| b.len() as u64);
            objects += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok((bytes, objects)),
        }
    }
}

/// Publishes `n` versions of one archive, then `n` of different archives, `size` bytes each.
pub async fn measure(
    ep: &Endpoint,
    n: usize,
    size: usize,
    local: Option<(&Counters, &stackhouse::App)>,
) -> Result<Vec<Series>> {
    let http = reqwest::Client::builder().build().map_err(|e| e.to_string())?;
    let run = format!("{:08x}", rand::random::<u32>());
    let mut out = Vec::new();
    let mut stored_before = match local {
        Some((_, app)) => Some(stored(app).await?),
        None => None,
    };
    for (label, same) in [("the same archive", true), ("different archives", false)] {
        let pack = format!("loadgen-{run}-{}", if same { "same" } else { "different" });
        let before = local.map(|(c, _)| c.snapshot());
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let bytes = archive(if same { 1 } else { i as u64 + 2 }, size);
            let started = Instant::now();
            publish(&http, ep, &pack, &format!("1.0.{i}"), &bytes).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let ops = local.zip(before).map(|((c, _), b)| c.snapshot() - b);
        let after = match local {
            Some((_, app)) => Some(stored(app).await?),
            None => None,
        };
        let grown = after.zip(stored_before).map(|(a, b)| (a.0 - b.0, a.1 - b.1));
        stored_before = after;
        times.sort_by(f64::total_cmp);
        out.push(Series {
            label,
            n,
            archive_bytes: size,
            publish_ms: (percentile(&times, 0.5), percentile(&times, 0.99)),
            stored_bytes: grown.map(|g| g.0),
            stored_objects: grown.map(|g| g.1),
            ops,
        });
    }
    Ok(out)
}

/// The report's table.
pub fn table(series: &[Series]) -> String {
    let mut out = String::from(
        "| publishes of | p50 | p99 | stored (objects, bytes) | per publish: metadata writes / write units, blob puts / gets | $ per 1,000 publishes |\n|---|---:|---:|---|---|---:|\n",
    );
    for s in series {
        let stored = match (s.stored_objects, s.stored_bytes) {
            (Some(o), Some(b)) => format!("{o}, {b}"),
            _ => "–".into(),
        };
        let (per, dollars) = match &s.ops {
            Some(ops) => {
                let per = |v: u64| v as f64 / s.n.max(1) as f64;
                (
                    format!(
                        "{:.2} / {:.2}, {:.2} / {:.2}",
                        per(ops.meta_puts + ops.meta_transactions + ops.meta_deletes),
                        per(ops.meta_write_units),
                        per(ops.blob_puts),
                        per(ops.blob_gets)
                    ),
                    // Two API requests per publish; the upload is an S3 PUT, among the blob puts.
                    format!(
                        "{:.4}",
                        cost(ops, 2 * s.n as u64, &PRICES) / s.n.max(1) as f64 * 1000.0
                    ),
                )
            }
            None => ("–".into(), "–".into()),
        };
        out.push_str(&format!(
            "| {} {} × {} KB | {:.2} ms | {:.2} ms | {stored} | {per} | {dollars} |\n",
            s.n,
            s.label,
            s.archive_bytes / 1024,
            s.publish_ms.0,
            s.publish_ms.1
        ));
    }
    out
}
