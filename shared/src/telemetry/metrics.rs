//! Request and job metrics: per route, the count by status class and a latency histogram; per
//! job, runs by outcome, their time and what they reported doing (updates reaped, messages
//! handled and failed); per ended update, what it stored (journal entries, checkpoint saves,
//! the published deployment's bytes); webhook deliveries by outcome. Kept in the process (the emulator serves them as Prometheus text at
//! `GET /metrics`), and printed by a Lambda function as one CloudWatch Embedded Metric Format
//! line per request or job run (CloudWatch turns log lines into metrics: no API call, no extra
//! latency).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
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

#[derive(Debug, Clone, Default)]
struct JobStats {
    ok: u64,
    failed: u64,
    sum_ms: f64,
    /// Summed counts of the runs' reports, by the report's field name.
    items: BTreeMap<String, u64>,
}

/// Most counts one job run reports (an EMF line may declare at most 100 metrics).
pub const MAX_JOB_COUNTS: usize = 20;

/// One finished run of a job: a scheduled run, or one batch of a queue job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    /// The job's function name.
    pub job: &'static str,
    /// Whether the run succeeded (a queue batch succeeds even when some messages failed: they
    /// are counted as `batchItemFailures`).
    pub ok: bool,
    /// How long it took.
    pub elapsed: Duration,
    /// What it reported doing, by name (camelCase or snake_case, as the report spells it).
    pub counts: Vec<(String, u64)>,
}

impl JobRun {
    /// A run whose report (`None` when it failed) holds its counts ([`report_counts`]).
    pub fn of(job: &'static str, report: Option<&serde_json::Value>, elapsed: Duration) -> JobRun {
        JobRun {
            job,
            ok: report.is_some(),
            elapsed,
            counts: report.map(report_counts).unwrap_or_default(),
        }
    }
}

/// The counts of a job's report: each top-level number, and the length of each top-level list
/// (`{"examined": 3, "reaped": ["u1"]}` → examined 3, reaped 1). Other fields are no counts.
pub fn report_counts(report: &serde_json::Value) -> Vec<(String, u64)> {
    let Some(fields) = report.as_object() else { return Vec::new() };
    fields
        .iter()
        .filter_map(|(name, v)| {
            let n = match v {
                serde_json::Value::Number(n) => n.as_u64()?,
                serde_json::Value::Array(items) => items.len() as u64,
                _ => return None,
            };
            Some((name.clone(), n))
        })
        .take(MAX_JOB_COUNTS)
        .collect()
}

/// `batchItemFailures` or `batch_item_failures` → `BatchItemFailures` (EMF metric names).
fn pascal(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `batchItemFailures` → `batch_item_failures` (Prometheus label values).
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What one ended update stored, for the per-update metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateEnd {
    /// `update`, `preview`, `refresh`, `destroy` (a dry run counts as `preview`).
    pub operation: String,
    /// `succeeded`, `failed` or `cancelled`.
    pub result: &'static str,
    /// Journal entries accepted (journal-mode updates).
    pub journal_entries: u64,
    /// Verbatim or delta checkpoints saved (checkpoint-mode updates).
    pub checkpoint_saves: u64,
    /// Bytes of the deployment it published (gzip, as stored; 0 when it published none).
    pub deployment_bytes: u64,
}

#[derive(Debug, Clone, Default)]
struct UpdateStats {
    /// Ended updates by result.
    by_result: BTreeMap<&'static str, u64>,
    journal_entries: u64,
    checkpoint_saves: u64,
    deployment_bytes: u64,
}

/// The metrics of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
    jobs: Mutex<BTreeMap<&'static str, JobStats>>,
    updates: Mutex<BTreeMap<String, UpdateStats>>,
    deliveries: Mutex<BTreeMap<&'static str, u64>>,
    /// A Lambda function: also print what the service observes as Embedded Metric Format lines
    /// (requests and job runs are printed by the transport, which sees them whole).
    emf: AtomicBool,
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

    /// Records one finished job run.
    pub fn observe_job(&self, run: &JobRun) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let stats = jobs.entry(run.job).or_default();
        if run.ok {
            stats.ok += 1;
        } else {
            stats.failed += 1;
        }
        stats.sum_ms += run.elapsed.as_secs_f64() * 1000.0;
        for (name, n) in &run.counts {
            *stats.items.entry(snake(name)).or_default() += n;
        }
    }

    /// From now on, also print each ended update and webhook delivery as an Embedded Metric
    /// Format line on stdout (a Lambda function's metrics; the emulator serves `/metrics`).
    pub fn print_emf(&self) {
        self.emf.store(true, Ordering::Relaxed);
    }

    /// Records one ended update (see [`UpdateEnd`]).
    pub fn observe_update(&self, end: &UpdateEnd) {
        {
            let mut updates = self.updates.lock().unwrap_or_else(|p| p.into_inner());
            let stats = updates.entry(end.operation.clone()).or_default();
            *stats.by_result.entry(end.result).or_default() += 1;
            stats.journal_entries += end.journal_entries;
            stats.checkpoint_saves += end.checkpoint_saves;
            stats.deployment_bytes += end.deployment_bytes;
        }
        if self.emf.load(Ordering::Relaxed) {
            println!("{}", update_emf_line(end, now_ms()));
        }
    }

    /// Records one webhook delivery attempt by its outcome (`delivered`, `skipped`, `busy`,
    /// `failed`, `error`).
    pub fn observe_delivery(&self, outcome: &'static str) {
        *self.deliveries.lock().unwrap_or_else(|p| p.into_inner()).entry(outcome).or_default() += 1;
        if self.emf.load(Ordering::Relaxed) {
            println!("{}", delivery_emf_line(outcome, now_ms()));
        }
    }

    /// Everything recorded, in the Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = self.route_text();
        out.push_str(&self.job_text());
        out.push_str(&self.work_text());
        out
    }

    fn work_text(&self) -> String {
        let updates = self.updates.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        out.push_str(
            "# HELP stackhouse_updates_ended_total Updates ended, by operation and result.\n",
        );
        out.push_str("# TYPE stackhouse_updates_ended_total counter\n");
        for (op, s) in &updates {
            for (result, n) in &s.by_result {
                let _ = writeln!(
                    out,
                    "stackhouse_updates_ended_total{{operation=\"{op}\",result=\"{result}\"}} {n}"
                );
            }
        }
        for (name, help, get) in [
            (
                "stackhouse_update_journal_entries_total",
                "Journal entries accepted by the updates that ended, by operation.",
                (|s: &UpdateStats| s.journal_entries) as fn(&UpdateStats) -> u64,
            ),
            (
                "stackhouse_update_checkpoint_saves_total",
                "Verbatim and delta checkpoints saved by the updates that ended, by operation.",
                |s| s.checkpoint_saves,
            ),
            (
                "stackhouse_update_deployment_bytes_total",
                "Bytes (gzip) of the deployments the ended updates published, by operation.",
                |s| s.deployment_bytes,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (op, s) in &updates {
                let _ = writeln!(out, "{name}{{operation=\"{op}\"}} {}", get(s));
            }
        }
        let deliveries = self.deliveries.lock().unwrap_or_else(|p| p.into_inner()).clone();
        out.push_str(
            "# HELP stackhouse_webhook_deliveries_total Webhook delivery attempts, by outcome.\n",
        );
        out.push_str("# TYPE stackhouse_webhook_deliveries_total counter\n");
        for (outcome, n) in &deliveries {
            let _ =
                writeln!(out, "stackhouse_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}");
        }
        out
    }

    fn job_text(&self) -> String {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        out.push_str("# HELP stackhouse_job_runs_total Job runs (queue jobs: batches), by job and outcome.\n");
        out.push_str("# TYPE stackhouse_job_runs_total counter\n");
        for (job, s) in &jobs {
            for (outcome, n) in [("ok", s.ok), ("failed", s.failed)] {
                let _ = writeln!(
                    out,
                    "stackhouse_job_runs_total{{job=\"{job}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP stackhouse_job_duration_ms Time job runs took, by job.\n");
        out.push_str("# TYPE stackhouse_job_duration_ms summary\n");
        for (job, s) in &jobs {
            let _ = writeln!(out, "stackhouse_job_duration_ms_sum{{job=\"{job}\"}} {}", s.sum_ms);
            let _ = writeln!(
                out,
                "stackhouse_job_duration_ms_count{{job=\"{job}\"}} {}",
                s.ok + s.failed
            );
        }
        out.push_str(
            "# HELP stackhouse_job_items_total What job runs reported (updates reaped, messages, batch item failures), by job and item.\n",
        );
        out.push_str("# TYPE stackhouse_job_items_total counter\n");
        for (job, s) in &jobs {
            for (item, n) in &s.items {
                let _ = writeln!(
                    out,
                    "stackhouse_job_items_total{{job=\"{job}\",item=\"{item}\"}} {n}"
                );
            }
        }
        out
    }

    fn route_text(&self) -> String {
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

/// One job run as an Embedded Metric Format line: `Runs`, `Failures`, `Duration` and each of
/// its counts (`Reaped`, `Messages`, `BatchItemFailures`, …) under the dimension `Job`.
pub fn job_emf_line(run: &JobRun, now_ms: u64) -> String {
    let mut metrics = vec![
        serde_json::json!({"Name": "Runs", "Unit": "Count"}),
        serde_json::json!({"Name": "Failures", "Unit": "Count"}),
        serde_json::json!({"Name": "Duration", "Unit": "Milliseconds"}),
    ];
    let mut line = serde_json::json!({
        "Job": run.job,
        "Runs": 1,
        "Failures": u8::from(!run.ok),
        "Duration": run.elapsed.as_secs_f64() * 1000.0,
    });
    for (name, n) in run.counts.iter().take(MAX_JOB_COUNTS) {
        let name = pascal(name);
        if line.get(&name).is_some() {
            continue;
        }
        metrics.push(serde_json::json!({"Name": name, "Unit": "Count"}));
        line[name.as_str()] = serde_json::json!(n);
    }
    line["_aws"] = serde_json::json!({
        "Timestamp": now_ms,
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [["Job"]],
            "Metrics": metrics,
        }],
    });
    line.to_string()
}

/// One ended update as an Embedded Metric Format line under the dimension `Operation`:
/// `UpdatesEnded`, `UpdatesFailed`, `JournalEntries`, `CheckpointSaves`, `DeploymentBytes`
/// (CloudWatch keeps their distribution per update: p50, p99, maximum).
pub fn update_emf_line(end: &UpdateEnd, now_ms: u64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Operation"]],
                "Metrics": [
                    {"Name": "UpdatesEnded", "Unit": "Count"},
                    {"Name": "UpdatesFailed", "Unit": "Count"},
                    {"Name": "JournalEntries", "Unit": "Count"},
                    {"Name": "CheckpointSaves", "Unit": "Count"},
                    {"Name": "DeploymentBytes", "Unit": "Bytes"},
                ],
            }],
        },
        "Operation": end.operation,
        "Result": end.result,
        "UpdatesEnded": 1,
        "UpdatesFailed": u8::from(end.result == "failed"),
        "JournalEntries": end.journal_entries,
        "CheckpointSaves": end.checkpoint_saves,
        "DeploymentBytes": end.deployment_bytes,
    })
    .to_string()
}

/// One webhook delivery attempt as an Embedded Metric Format line: `WebhookDeliveries` under
/// the dimension `Outcome`.
pub fn delivery_emf_line(outcome: &str, now_ms: u64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Outcome"]],
                "Metrics": [{"Name": "WebhookDeliveries", "Unit": "Count"}],
            }],
        },
        "Outcome": outcome,
        "WebhookDeliveries": 1,
    })
    .to_string()
}

/// Milliseconds since the Unix epoch (an EMF line's timestamp).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

    #[test]
    fn job_runs_count_by_outcome_and_report() {
        let m = Metrics::default();
        let report =
            serde_json::json!({"examined": 3, "live": 1, "reaped": ["u1", "u2"], "note": "x"});
        m.observe_job(&JobRun::of("job-lease-reaper", Some(&report), Duration::from_millis(4)));
        m.observe_job(&JobRun::of("job-lease-reaper", None, Duration::from_millis(6)));
        let batch = serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m"}]});
        m.observe_job(&JobRun::of("job-webhook-deliver", Some(&batch), Duration::from_millis(1)));
        let text = m.prometheus();
        for line in [
            "stackhouse_job_runs_total{job=\"job-lease-reaper\",outcome=\"ok\"} 1",
            "stackhouse_job_runs_total{job=\"job-lease-reaper\",outcome=\"failed\"} 1",
            "stackhouse_job_duration_ms_sum{job=\"job-lease-reaper\"} 10",
            "stackhouse_job_duration_ms_count{job=\"job-lease-reaper\"} 2",
            "stackhouse_job_items_total{job=\"job-lease-reaper\",item=\"reaped\"} 2",
            "stackhouse_job_items_total{job=\"job-lease-reaper\",item=\"examined\"} 3",
            "stackhouse_job_items_total{job=\"job-webhook-deliver\",item=\"batch_item_failures\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("note"), "a string field is no count");
    }

    #[test]
    fn a_job_emf_line_declares_its_metrics_and_counts() {
        let report = serde_json::json!({"reaped": ["u1"], "errors": 0, "batchItemFailures": []});
        let run = JobRun::of("job-lease-reaper", Some(&report), Duration::from_millis(7));
        let v: serde_json::Value = serde_json::from_str(&job_emf_line(&run, 1)).unwrap();
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Dimensions"], serde_json::json!([["Job"]]));
        let names: Vec<&str> = declared["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Runs", "Failures", "Duration", "BatchItemFailures", "Errors", "Reaped"]
        );
        for name in names {
            assert!(v.get(name).is_some(), "metric {name} has no value");
        }
        assert_eq!(
            (v["Job"].as_str(), v["Failures"].as_u64()),
            (Some("job-lease-reaper"), Some(0))
        );
        assert_eq!(v["Reaped"].as_u64(), Some(1));
        let failed = JobRun::of("job-lease-reaper", None, Duration::ZERO);
        let v: serde_json::Value = serde_json::from_str(&job_emf_line(&failed, 1)).unwrap();
        assert_eq!(v["Failures"].as_u64(), Some(1));
    }

    #[test]
    fn ended_updates_and_deliveries_count_by_operation_and_outcome() {
        let m = Metrics::default();
        let end = |operation: &str, result, journal_entries, checkpoint_saves, deployment_bytes| {
            UpdateEnd {
                operation: operation.to_string(),
                result,
                journal_entries,
                checkpoint_saves,
                deployment_bytes,
            }
        };
        m.observe_update(&end("update", "succeeded", 120, 0, 4096));
        m.observe_update(&end("update", "failed", 3, 0, 0));
        m.observe_update(&end("refresh", "succeeded", 0, 7, 900));
        m.observe_delivery("delivered");
        m.observe_delivery("delivered");
        m.observe_delivery("failed");
        let text = m.prometheus();
        for line in [
            "stackhouse_updates_ended_total{operation=\"update\",result=\"succeeded\"} 1",
            "stackhouse_updates_ended_total{operation=\"update\",result=\"failed\"} 1",
            "stackhouse_update_journal_entries_total{operation=\"update\"} 123",
            "stackhouse_update_checkpoint_saves_total{operation=\"refresh\"} 7",
            "stackhouse_update_deployment_bytes_total{operation=\"update\"} 4096",
            "stackhouse_webhook_deliveries_total{outcome=\"delivered\"} 2",
            "stackhouse_webhook_deliveries_total{outcome=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let v: serde_json::Value =
            serde_json::from_str(&update_emf_line(&end("destroy", "failed", 9, 0, 0), 1)).unwrap();
        for m in v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v.get(name).is_some(), "metric {name} has no value");
        }
        assert_eq!((v["UpdatesFailed"].as_u64(), v["JournalEntries"].as_u64()), (Some(1), Some(9)));
        let v: serde_json::Value = serde_json::from_str(&delivery_emf_line("busy", 1)).unwrap();
        assert_eq!(
            (v["Outcome"].as_str(), v["WebhookDeliveries"].as_u64()),
            (Some("busy"), Some(1))
        );
    }
}
