//! Tracing setup: JSON lines (for CloudWatch and log tooling) or human-readable text.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing. The level comes from
/// `STACKHOUSE_LOG` (or `RUST_LOG`), default `info`; `json` picks the output format.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("STACKHOUSE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.compact().try_init()
    };
}

pub mod metrics;
