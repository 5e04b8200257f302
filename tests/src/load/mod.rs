//! The load generator behind `cargo run -p stackhouse-tests --bin loadgen` (docs/BENCHMARKS.md):
//! replays Pulumi CLI sessions (docs/PROTOCOL-NOTES.md, Update lifecycle) against any server that
//! speaks the Pulumi service protocol, given a base URL, an access token and an organization.
//!
//! One session on one stack: create the stack, `up` of N resources, a no-op `up`, an `up` that
//! adds 2, `export`, `destroy`, `stack rm`. Each `up`/`destroy` is a dry run followed by the
//! update, as `pulumi up` does. State is persisted in one of the three modes of
//! [`crate::session::Mode`] the way the CLI persists it: journal entries in ordered batches of at most
//! 100, or a checkpoint (full, or verbatim then delta) at the start and at the end of every
//! mutating step. Engine events go out in batches of at most 50 with up to 3 in flight; the
//! lease is renewed whenever it is older than the renewal interval.
//!
//! Measured per phase: wall time, requests, bytes sent (before and after gzip), and, when the
//! server runs in this process on ports wrapped by [`counting`], the storage operations and
//! their cost at AWS prices ([`Prices`]). Over the whole run: the server's CPU time (and, for a
//! separate process given by id, its memory), see [`server_cost`].
//!
//! Full and verbatim checkpoints are O(N²) in bytes over an update: when the bytes of every
//! save would exceed [`Scenario::save_budget_bytes`], only every S-th save is sent (the final
//! state always is) and each sent save is counted S times; the report marks such numbers as
//! extrapolated.

pub mod artifacts;
pub mod console_load;
pub mod deploy_latency;
mod driver;
pub mod env_open;
pub mod feed_latency;
mod local;
mod prices;
mod recorder;
pub mod report;
mod scenario;
pub mod server_cost;
pub mod small;
#[cfg(test)]
mod tests;

pub use driver::{resource, run};
pub use local::{LocalBackend, LocalServer};
pub use prices::{cost, Prices, PRICES};
pub use recorder::{route_label, Recorder, RouteRow, Traffic};
pub use report::Report;
pub use scenario::{mode_name, parse_mode, Endpoint, Phase, Result, Scenario};
pub use server_cost::{ServerCost, ServerProcess};
