//! The deep health check: one cheap read of each port, run concurrently, each bounded by a
//! timeout and timed, with one readable line per failure (never a secret: the ports' errors
//! name services and endpoints, not credentials).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::App;
use crate::ports::queue::default_queues;
use crate::ports::{QueueDepth, QueueError};

/// Longest one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The key a metadata probe reads and a blob probe looks for; nothing ever writes them.
const PROBE_PK: &str = "HEALTH";
const PROBE_BLOB: &str = "health/probe";

/// One port's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "HealthCheck"))]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `metadata`, `blobs`, `queue` or `keys`.
    pub name: &'static str,
    /// What was asked of it.
    pub probe: &'static str,
    /// Whether it answered as expected within [`CHECK_TIMEOUT`].
    pub ok: bool,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Messages per queue (the queue check only): waiting, in flight, delayed, for each queue
    /// and its dead-letter queue.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueReport>,
}

/// One queue's depth.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "QueueDepthReport"))]
pub struct QueueReport {
    /// Logical queue name (`jobs`, `jobs-dlq`, …).
    pub queue: String,
    /// Its messages by state.
    #[serde(flatten)]
    pub depth: QueueDepth,
}

/// Every port's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "HealthReport"))]
pub struct Report {
    /// `ok` when every check passed, else `degraded`.
    pub status: &'static str,
    /// One per port.
    pub checks: Vec<Check>,
}

/// Runs the four checks concurrently.
pub async fn deep(app: &App) -> Report {
    let p = &app.ports;
    let (meta, blobs, queue, keys) = tokio::join!(
        timed("metadata", "read a missing item", async {
            p.meta.get(PROBE_PK, PROBE_PK).await.map(|_| Vec::new()).map_err(|e| e.to_string())
        }),
        timed("blobs", "look up a missing object", async {
            p.blobs.get(PROBE_BLOB).await.map(|_| Vec::new()).map_err(|e| e.to_string())
        }),
        timed("queue", "read each queue's attributes", async {
            queue_depths(app)
                .await
                .into_iter()
                .map(|(queue, depth)| match depth {
                    Ok(depth) => Ok(QueueReport { queue, depth }),
                    Err(e) => Err(format!("{queue}: {e}")),
                })
                .collect()
        }),
        timed("keys", "describe the key", async {
            p.keys.describe().await.map(|()| Vec::new()).map_err(|e| e.to_string())
        }),
    );
    let checks = vec![meta, blobs, queue, keys];
    let status = if checks.iter().all(|c| c.ok) { "ok" } else { "degraded" };
    Report { status, checks }
}

/// The depth of every queue and its dead-letter queue, each read once, in order.
pub async fn queue_depths(app: &App) -> Vec<(String, Result<QueueDepth, QueueError>)> {
    let mut depths = Vec::new();
    for spec in default_queues() {
        for name in [spec.name.clone(), spec.dlq_name()] {
            let depth = app.ports.queue.depth(&name).await;
            depths.push((name, depth));
        }
    }
    depths
}

async fn timed(
    name: &'static str,
    probe: &'static str,
    check: impl std::future::Future<Output = Result<Vec<QueueReport>, String>>,
) -> Check {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (ok, error, queues) = match outcome {
        Ok(Ok(queues)) => (true, None, queues),
        Ok(Err(e)) => (false, Some(e), Vec::new()),
        Err(_) => (false, Some(format!("no answer within {CHECK_TIMEOUT:?}")), Vec::new()),
    };
    Check { name, probe, ok, latency_ms, error, queues }
}
