//! Request metrics: per route, the count by status class and a latency histogram, kept in the
//! process (the emulator serves them as Prometheus text at `GET /metrics`), and the CloudWatch
//! Embedded Metric Format line a Lambda function prints per request (CloudWatch turns log lines
//! into metrics: no API call, no extra latency).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in milliseconds (Prometheus `le`).
pub const BUCKETS_MS: [f64; 12] =
    [0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];

/// The CloudWatch namespace of the functions' metrics.
pub const NAMESPACE: &str = "Stackhouse";

#[derive(Debug, Clone, Default)]
struct RouteStats {
    /// Responses by status class: index 0 is 1xx … index 4 is 5xx.
    by_class: [u64; 5],
    /// Responses at or under each bound of [`BUCKETS_MS`] (not cumulative here).
    buckets: [u64; BUCKETS_MS.len()],
    /// All responses, and their summed latency.
    count: u64,
    sum_ms: f64,
}

/// The metrics of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
}

impl Metrics {
    /// Records one answered request of `route` (its function name; `-` when no route matched).
    pub fn observe(&self, route: &'static str, status: u16, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = routes.entry(route).or_default();
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        stats.by_class[class] += 1;
        if let Some(i) = BUCKETS_MS.iter().position(|&bound| ms <= bound) {
            stats.buckets[i] += 1;
        }
        stats.count += 1;
        stats.sum_ms += ms;
    }

    /// Everything recorded, in the Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        out.push_str(
            "# HELP stackhouse_requests_total Requests answered, by route and status class.\n",
        );
        out.push_str("# TYPE stackhouse_requests_total counter\n");
        for (route, s) in &routes {
            for (i, n) in s.by_class.iter().enumerate().filter(|(_, n)| **n > 0) {
                let _ = writeln!(
                    out,
                    "stackhouse_requests_total{{route=\"{route}\",class=\"{}xx\"}} {n}",
                    i + 1
                );
            }
        }
        out.push_str("# HELP stackhouse_request_duration_ms Time to answer, by route.\n");
        out.push_str("# TYPE stackhouse_request_duration_ms histogram\n");
        for (route, s) in &routes {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS_MS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(out, "stackhouse_request_duration_ms_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(
                out,
                "stackhouse_request_duration_ms_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "stackhouse_request_duration_ms_sum{{route=\"{route}\"}} {}",
                s.sum_ms
            );
            let _ = writeln!(
                out,
                "stackhouse_request_duration_ms_count{{route=\"{route}\"}} {}",
                s.count
            );
        }
        out
    }
}

/// Queue depths as Prometheus gauges (`stackhouse_queue_messages{queue,state}`), from
/// `(queue, [visible, in_flight, delayed])` rows read at scrape time.
pub fn queue_gauges(rows: &[(String, [u64; 3])]) -> String {
    let mut out = String::new();
    out.push_str("# HELP stackhouse_queue_messages Messages in each queue, by state.\n");
    out.push_str("# TYPE stackhouse_queue_messages gauge\n");
    for (queue, counts) in rows {
        for (state, n) in ["visible", "in_flight", "delayed"].iter().zip(counts) {
            let _ = writeln!(
                out,
                "stackhouse_queue_messages{{queue=\"{queue}\",state=\"{state}\"}} {n}"
            );
        }
    }
    out
}

/// One request as a CloudWatch Embedded Metric Format log line: `Requests`, `Latency` and
/// `Status4xx`/`Status5xx` under the dimension `Function`, plus the status code as a property.
pub fn emf_line(function: &str, status: u16, elapsed: Duration, now_ms: u64) -> String {
    let class = |c: u16| u8::from(status / 100 == c);
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "Status4xx", "Unit": "Count"},
                    {"Name": "Status5xx", "Unit": "Count"},
                ],
            }],
        },
        "Function": function,
        "Requests": 1,
        "Latency": elapsed.as_secs_f64() * 1000.0,
        "Status4xx": class(4),
        "Status5xx": class(5),
        "StatusCode": status,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_move_with_requests() {
        let m = Metrics::default();
        m.observe("stack-get", 200, Duration::from_micros(800));
        m.observe("stack-get", 200, Duration::from_millis(30));
        m.observe("stack-get", 404, Duration::from_millis(2));
        m.observe("user-get", 503, Duration::from_secs(9));
        let text = m.prometheus();
        for line in [
            "stackhouse_requests_total{route=\"stack-get\",class=\"2xx\"} 2",
            "stackhouse_requests_total{route=\"stack-get\",class=\"4xx\"} 1",
            "stackhouse_requests_total{route=\"user-get\",class=\"5xx\"} 1",
            "stackhouse_request_duration_ms_bucket{route=\"stack-get\",le=\"1\"} 1",
            "stackhouse_request_duration_ms_bucket{route=\"stack-get\",le=\"2.5\"} 2",
            "stackhouse_request_duration_ms_bucket{route=\"stack-get\",le=\"50\"} 3",
            "stackhouse_request_duration_ms_bucket{route=\"user-get\",le=\"5000\"} 0",
            "stackhouse_request_duration_ms_bucket{route=\"user-get\",le=\"+Inf\"} 1",
            "stackhouse_request_duration_ms_count{route=\"stack-get\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn an_emf_line_declares_its_metrics() {
        let line = emf_line("stack-get", 503, Duration::from_millis(12), 1_764_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"], serde_json::json!([["Function"]]));
        for m in declared["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v.get(name).is_some(), "metric {name} has no value");
        }
        assert_eq!((v["Status5xx"].as_u64(), v["Status4xx"].as_u64()), (Some(1), Some(0)));
        assert_eq!(v["Latency"].as_f64(), Some(12.0));
        assert!(!line.contains('\n'), "one line");
    }
}
