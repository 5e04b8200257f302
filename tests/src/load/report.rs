//! The report of a run: per phase and per route, as a table or JSON.

use serde::Serialize;

use super::prices::{cost, PRICES};
use super::recorder::RouteRow;
use super::scenario::{mode_name, Phase, Scenario};

/// The result of one [`Scenario`].
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Label of the server (`embedded`, `aws (moto)`, or the URL).
    pub backend: String,
    /// What was run.
    pub scenario: Scenario,
    /// Per phase.
    pub phases: Vec<Phase>,
    /// Per route, over the whole run (sampled saves not extrapolated).
    pub routes: Vec<RouteRow>,
    /// Whole-run wall time, ms (measured).
    pub wall_ms: f64,
    /// What the run cost the server, when it could be measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<super::ServerCost>,
}

pub(super) fn mb(bytes: u64) -> String {
    if bytes >= 10 << 20 {
        format!("{:.0} MB", bytes as f64 / (1 << 20) as f64)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.0} KB", bytes as f64 / 1024.0)
    }
}

/// The value at quantile `q` (0 to 1) of `sorted` (ascending), by nearest rank; 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(at).copied().unwrap_or(0.0)
}

/// The p50 and p99 of `v` (in any order).
pub fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// A duration in ms, to 3 significant places.
pub fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

impl Report {
    /// A title line for the run.
    pub fn title(&self) -> String {
        let s = &self.scenario;
        let pad = if s.pad_bytes > 0 {
            format!(", resources padded to ~{} KB", s.pad_bytes / 1024)
        } else {
            String::new()
        };
        let cost = self.server.map(|c| format!("; {}", c.line())).unwrap_or_default();
        format!(
            "{}: N = {}, mode {}{pad}, {} stack(s) in parallel{}{cost}",
            self.backend,
            s.n,
            mode_name(s.mode),
            s.stacks,
            if s.preview { "" } else { ", no previews" }
        )
    }

    /// The per-phase table (Markdown). Extrapolated values carry a `*`.
    pub fn phase_table(&self) -> String {
        let mut out = String::from(
            "| phase | steps | wall | requests | sent (wire) | stored (S3 + DDB) | DDB reads / writes (units) | DDB requests | S3 puts / gets | KMS | SQS | per resource step: DDB R/W units, S3 puts | $ per 1,000 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for p in &self.phases {
            let star = if p.sample_every > 1 { "*" } else { "" };
            let t = p.total_traffic();
            let (ops_cells, per_step, dollars) = match p.total_ops() {
                Some(o) => {
                    let per = if p.steps > 0 {
                        let k = (p.steps * self.scenario.stacks.max(1)) as f64;
                        format!(
                            "{:.1} / {:.1}, {:.2}",
                            o.meta_read_units as f64 / k,
                            o.meta_write_units as f64 / k,
                            o.blob_puts as f64 / k
                        )
                    } else {
                        "–".into()
                    };
                    let per_stack =
                        cost(&o, t.requests, &PRICES) / self.scenario.stacks.max(1) as f64;
                    (
                        format!(
                            "{}{star} | {} / {} | {} | {} / {} | {} | {}",
                            mb(o.blob_bytes_put + o.meta_bytes_written),
                            o.meta_read_units,
                            o.meta_write_units,
                            o.meta_requests(),
                            o.blob_puts,
                            o.blob_gets,
                            o.kms_calls,
                            o.queue_requests()
                        ),
                        per,
                        format!("{:.3}", per_stack * 1000.0),
                    )
                }
                None => ("– | – | – | – | – | –".into(), "–".into(), "–".into()),
            };
            out.push_str(&format!(
                "| {} | {} | {}{star} | {}{star} | {}{star} | {ops_cells} | {per_step} | {dollars} |\n",
                p.name,
                p.steps,
                ms(p.total_wall_ms()),
                t.requests,
                mb(t.sent_wire),
            ));
        }
        if let Some(p) = self.phases.iter().find(|p| p.sample_every > 1) {
            out.push_str(&format!(
                "\n\\* extrapolated: only every {}th checkpoint was sent (the final state always); each sent one is counted {} times.\n",
                p.sample_every, p.sample_every
            ));
        }
        out
    }

    /// The per-route latency table (Markdown).
    pub fn route_table(&self) -> String {
        let mut out = String::from(
            "| route | requests | p50 | p99 | max | mean body sent |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.routes {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.route,
                r.count,
                ms(r.p50_ms),
                ms(r.p99_ms),
                ms(r.max_ms),
                mb(r.mean_sent_wire)
            ));
        }
        out
    }

    /// The phase `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}
