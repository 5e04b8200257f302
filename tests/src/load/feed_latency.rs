//! Delivery latency of the event stream (`loadgen feed`): `clients` readers long-poll
//! `GET /api/orgs/{org}/events?after=<seq>&wait=20` (or, with `--ws`, hold a WebSocket open),
//! the driver makes `changes` changes one at a time (tag updates of one stack), and a reader's
//! latency for an event is the time from the change's request leaving the driver to the
//! reader's response (or frame) carrying the event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use stackhouse::adapters::counting::Counters;

use super::scenario::{Endpoint, Result};

/// What one measurement found.
#[derive(Debug, Clone)]
pub struct FeedLatency {
    /// Readers waiting at once.
    pub clients: usize,
    /// Changes made (events each reader received).
    pub changes: usize,
    /// Latency percentiles over every (reader, event), milliseconds.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// See `p50_ms`.
    pub max_ms: f64,
    /// Storage and push operations while the changes were made and delivered (readers already
    /// connected), when the server's counters were given.
    pub ops: Option<stackhouse::adapters::counting::OpCounts>,
}

/// How long the driver leaves the readers to ask again between two changes.
const REARM: Duration = Duration::from_millis(100);

async fn get_json(http: &reqwest::Client, ep: &Endpoint, path: &str) -> Result<Value> {
    let r = http
        .get(format!("{}{path}", ep.base))
        .header("Authorization", format!("token {}", ep.token))
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("GET {path}: {}", r.status()));
    }
    r.json().await.map_err(|e| format!("GET {path}: {e}"))
}

/// The last number of the organization's stream as `ep`'s token sees it.
async fn last_seq(http: &reqwest::Client, ep: &Endpoint) -> Result<i64> {
    let mut after = 0;
    loop {
        let page =
            get_json(http, ep, &format!("/api/orgs/{}/events?after={after}&limit=1000", ep.org))
                .await?;
        let next = page["next"].as_i64().ok_or("events page without next")?;
        if next == after {
            return Ok(after);
        }
        after = next;
    }
}

/// Creates the stack whose tag updates are the bench's changes; returns its path.
async fn bench_stack(http: &reqwest::Client, ep: &Endpoint) -> Result<String> {
    let stack = format!("/api/stacks/{}/feed-bench/s{}", ep.org, rand::random::<u32>());
    let create = http
        .post(format!("{}/api/stacks/{}/feed-bench", ep.base, ep.org))
        .header("Authorization", format!("token {}", ep.token))
        .json(&json!({"stackName": stack.rsplit('/').next()}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !create.status().is_success() {
        return Err(format!("creating the bench stack: {}", create.status()));
    }
    Ok(stack)
}

/// Makes the changes, one every [`REARM`]; returns when each one's request left, by the
/// number its event gets (they follow `start`).
async fn drive(
    http: &reqwest::Client,
    ep: &Endpoint,
    stack: &str,
    start: i64,
    changes: usize,
) -> Result<HashMap<i64, Instant>> {
    let mut sent: HashMap<i64, Instant> = HashMap::new();
    for i in 0..changes {
        tokio::time::sleep(REARM).await;
        let at = Instant::now();
        let r = http
            .patch(format!("{}{stack}/tags", ep.base))
            .header("Authorization", format!("token {}", ep.token))
            .json(&json!({"round": i.to_string()}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("tag update: {}", r.status()));
        }
        sent.insert(start + 1 + i as i64, at);
    }
    Ok(sent)
}

/// One measurement's fixed parts, once its readers wait.
struct Bench<'a> {
    http: &'a reqwest::Client,
    ep: &'a Endpoint,
    stack: &'a str,
    start: i64,
    clients: usize,
    changes: usize,
    counters: Option<&'a Counters>,
}

/// A reader: when it received each event, by number.
type Reader = tokio::task::JoinHandle<Result<Vec<(i64, Instant)>>>;

impl Bench<'_> {
    /// Makes the changes, collects what the readers received, and counts the server's
    /// operations meanwhile.
    async fn run(&self, readers: Vec<Reader>) -> Result<FeedLatency> {
        let before = self.counters.map(Counters::snapshot);
        let sent = drive(self.http, self.ep, self.stack, self.start, self.changes).await?;
        let mut received = Vec::new();
        for r in readers {
            received.push(r.await.map_err(|e| e.to_string())??);
        }
        let mut m = summarise(self.clients, self.changes, &sent, received)?;
        m.ops = self.counters.zip(before).map(|(c, b)| c.snapshot() - b);
        Ok(m)
    }
}

/// Percentiles of every reader's latencies.
fn summarise(
    clients: usize,
    changes: usize,
    sent: &HashMap<i64, Instant>,
    received: Vec<Vec<(i64, Instant)>>,
) -> Result<FeedLatency> {
    let mut latencies = Vec::new();
    for (seq, at) in received.into_iter().flatten() {
        let from = sent.get(&seq).ok_or_else(|| format!("event {seq} was not a bench change"))?;
        latencies.push(at.saturating_duration_since(*from).as_secs_f64() * 1000.0);
    }
    if latencies.is_empty() {
        return Err("no event was delivered".into());
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| super::report::percentile(&latencies, q);
    Ok(FeedLatency {
        clients,
        changes,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
        ops: None,
    })
}

fn client(clients: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(clients + 4)
        .build()
        .map_err(|e| e.to_string())
}

/// Runs one long-poll measurement against `ep` (any Stackhouse server); `counters`, when
/// given, are the server's, read once the readers wait and again at the end.
pub async fn measure(
    ep: &Endpoint,
    clients: usize,
    changes: usize,
    counters: Option<&Counters>,
) -> Result<FeedLatency> {
    let http = client(clients)?;
    let stack = bench_stack(&http, ep).await?;
    let start = last_seq(&http, ep).await?;
    let mut readers = Vec::new();
    for _ in 0..clients {
        let (http, ep) = (http.clone(), ep.clone());
        readers.push(tokio::spawn(async move {
            let mut got: Vec<(i64, Instant)> = Vec::new();
            let mut after = start;
            while got.len() < changes {
                let path = format!("/api/orgs/{}/events?after={after}&wait=20", ep.org);
                let page = get_json(&http, &ep, &path).await?;
                let at = Instant::now();
                for e in page["events"].as_array().into_iter().flatten() {
                    got.push((e["seq"].as_i64().unwrap_or(0), at));
                }
                after = page["next"].as_i64().ok_or("events page without next")?;
            }
            Ok::<_, String>(got)
        }));
    }
    let bench = Bench { http: &http, ep, stack: &stack, start, clients, changes, counters };
    bench.run(readers).await
}

/// Runs one WebSocket measurement: `clients` connections to `ws_url` (the server's event-stream
/// WebSocket), each receiving every change as a frame.
pub async fn measure_ws(
    ep: &Endpoint,
    ws_url: &str,
    clients: usize,
    changes: usize,
    counters: Option<&Counters>,
) -> Result<FeedLatency> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let http = client(4)?;
    let stack = bench_stack(&http, ep).await?;
    let start = last_seq(&http, ep).await?;
    let mut sockets = Vec::new();
    for _ in 0..clients {
        let mut req = format!("{ws_url}/?org={}&after={start}", ep.org)
            .into_client_request()
            .map_err(|e| e.to_string())?;
        let auth = format!("token {}", ep.token).parse().map_err(|_| "token header")?;
        req.headers_mut().insert("authorization", auth);
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| e.to_string())?;
        sockets.push(ws);
    }
    let mut readers = Vec::new();
    for mut ws in sockets {
        readers.push(tokio::spawn(async move {
            let mut got: Vec<(i64, Instant)> = Vec::new();
            while got.len() < changes {
                let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
                    .await
                    .map_err(|_| "no frame for 60 s")?;
                let Some(Ok(Message::Text(text))) = frame else {
                    return Err("the WebSocket closed".to_string());
                };
                let at = Instant::now();
                let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if v["type"] == "event" {
                    got.push((v["seq"].as_i64().unwrap_or(0), at));
                }
            }
            Ok::<_, String>(got)
        }));
    }
    let bench = Bench { http: &http, ep, stack: &stack, start, clients, changes, counters };
    bench.run(readers).await
}
