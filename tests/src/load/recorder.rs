//! Recording every request a client sends: latency and bytes, per route.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;

/// Latency and bytes of every request a recording [`Client`] sends.
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<RecorderInner>,
}

#[derive(Default)]
pub(super) struct RecorderInner {
    routes: BTreeMap<String, RouteStats>,
    totals: Traffic,
}

#[derive(Default)]
pub(super) struct RouteStats {
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
    pub(super) fn times(self, k: u64) -> Traffic {
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
