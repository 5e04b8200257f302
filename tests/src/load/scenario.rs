//! What a run does (scenario, endpoint) and what one phase of it measured.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use stackhouse::adapters::counting::OpCounts;

use crate::session::Mode;

use super::prices::add_ops;
use super::recorder::Traffic;

/// Where the server is and who we are.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, no trailing `/`.
    pub base: String,
    /// Access token.
    pub token: String,
    /// Organization the stacks go to.
    pub org: String,
}

/// One load run.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Resources of the first `up`.
    pub n: usize,
    /// Bytes of padding in every resource's outputs (0 = none; 16,384 for "~16 KB").
    pub pad_bytes: usize,
    /// Persistence mode asked for (the server may turn journaling down, as with the CLI).
    #[serde(serialize_with = "ser_mode")]
    pub mode: Mode,
    /// Stacks updated in parallel, one session each.
    pub stacks: usize,
    /// Run the dry run before each update, as `pulumi up` does without `--skip-preview`.
    pub preview: bool,
    /// Renew the lease when it is older than this (the CLI: about 150 s).
    pub renew_every: Duration,
    /// Most bytes of checkpoints one update may send before saves are sampled.
    pub save_budget_bytes: u64,
}

pub(super) fn ser_mode<S: serde::Serializer>(
    m: &Mode,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(mode_name(*m))
}

/// The name of a mode in reports and on the command line.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Journal => "journal",
        Mode::VerbatimDelta => "delta",
        Mode::Full => "full",
    }
}

/// Parses a mode name ([`mode_name`]).
pub fn parse_mode(s: &str) -> Option<Mode> {
    match s {
        "journal" => Some(Mode::Journal),
        "delta" | "verbatim" | "verbatim+delta" => Some(Mode::VerbatimDelta),
        "full" => Some(Mode::Full),
        _ => None,
    }
}

impl Scenario {
    /// A single-stack run with the CLI's defaults.
    pub fn new(n: usize, mode: Mode) -> Scenario {
        Scenario {
            n,
            pad_bytes: 0,
            mode,
            stacks: 1,
            preview: true,
            renew_every: Duration::from_secs(150),
            save_budget_bytes: 1 << 30,
        }
    }
}

/// What one phase cost, over all stacks.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// `create`, `up`, `up-noop`, `up-add2`, `export`, `destroy`, `rm`.
    pub name: &'static str,
    /// Engine steps of the update (per stack), 0 for non-update phases.
    pub steps: usize,
    /// Wall time as measured, ms.
    pub wall_ms: f64,
    /// Requests and bytes as measured.
    pub traffic: Traffic,
    /// Storage operations as measured (in-process servers only).
    pub ops: Option<OpCounts>,
    /// Only every `sample_every`-th save was sent (1 = all of them).
    pub sample_every: usize,
    /// What the unsent saves would have added (zero unless sampled): wall ms.
    pub extra_wall_ms: f64,
    /// … requests and bytes.
    pub extra_traffic: Traffic,
    /// … storage operations.
    pub extra_ops: Option<OpCounts>,
    /// Persistence mode the server accepted.
    pub effective_mode: &'static str,
}

impl Phase {
    /// Wall time including the extrapolated saves.
    pub fn total_wall_ms(&self) -> f64 {
        self.wall_ms + self.extra_wall_ms
    }
    /// Requests and bytes including the extrapolated saves.
    pub fn total_traffic(&self) -> Traffic {
        self.traffic + self.extra_traffic
    }
    /// Storage operations including the extrapolated saves.
    pub fn total_ops(&self) -> Option<OpCounts> {
        match (self.ops, self.extra_ops) {
            (Some(a), Some(b)) => Some(add_ops(a, b)),
            (a, _) => a,
        }
    }
}

/// A failed call: the load generator stops with this message.
pub type Result<T> = std::result::Result<T, String>;

pub(super) fn check(what: &str, r: &crate::server::Reply) -> Result<()> {
    if r.status.is_success() {
        Ok(())
    } else {
        Err(format!("{what}: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body)))
    }
}

pub(super) fn json_of(what: &str, r: &crate::server::Reply) -> Result<Value> {
    check(what, r)?;
    serde_json::from_slice(&r.body).map_err(|e| format!("{what}: body is not JSON: {e}"))
}
