//! The application object: ports and settings, built once per process (a Lambda cold start or
//! the emulator's start) and shared by every request.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::config::{ConfigError, Env};
use crate::ports::Ports;

/// Limits and knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Largest request body accepted as sent (compressed or not).
    pub max_request_bytes: usize,
    /// Largest request body after gzip decoding (docs/PROTOCOL-NOTES.md, Gzip and body sizes:
    /// checkpoints of tens of MB exist).
    pub max_decoded_bytes: usize,
    /// Lease length of an update, in seconds (the CLI renews every ~2.5 minutes).
    pub lease_seconds: i64,
    /// `checkpointCutoffSizeBytes` of the delta-checkpoint capability: deployments smaller
    /// than this are sent verbatim. Deltas save upload bytes on large stacks but cost the
    /// server a read of the previous checkpoint.
    pub checkpoint_cutoff_bytes: i64,
    /// Most checkpoint deltas stored after one full state (`service::updates::chain`): what
    /// rebuilding a state may have to apply.
    pub checkpoint_chain_deltas: i64,
    /// Largest journal batch accepted; bigger ones get 413 and the CLI splits them.
    pub max_journal_batch_bytes: usize,
    /// Whether updates may persist journal entries (`journalVersion: 1`).
    pub journaling: bool,
    /// Which stack versions `job-history-retention` keeps (`STACKHOUSE_HISTORY_RETENTION`).
    pub history_retention: crate::service::retention::Policy,
    /// Age after which crash leftovers and the scratch blobs of ended updates are removed
    /// (`STACKHOUSE_ORPHAN_GRACE_SECONDS`, default 7 days).
    pub orphan_grace_seconds: i64,
    /// How long events of the event stream are kept (`STACKHOUSE_EVENT_RETENTION_SECONDS`,
    /// default 30 days; see `service::feed`).
    pub event_retention_seconds: i64,
    /// Whether webhooks may target loopback, private and link-local addresses
    /// (`STACKHOUSE_WEBHOOK_ALLOW_LOOPBACK=1`; off by default).
    pub webhook_allow_loopback: bool,
    /// Budget of one access token (`STACKHOUSE_RATE_LIMIT_TOKEN`, `<per-minute>[,<burst>]`, 0
    /// disables; see `service::ratelimit`).
    pub rate_limit_token: Option<crate::service::ratelimit::Limit>,
    /// Budget of one organization (`STACKHOUSE_RATE_LIMIT_ORG`).
    pub rate_limit_org: Option<crate::service::ratelimit::Limit>,
    /// Budget of one running update's lease calls (`STACKHOUSE_RATE_LIMIT_UPDATE`).
    pub rate_limit_update: Option<crate::service::ratelimit::Limit>,
    /// A journal-mode update gets a materialised snapshot each time this many more entries
    /// arrived (`STACKHOUSE_MATERIALISE_EVERY_ENTRIES`, default 1,000; 0 turns it off).
    pub materialise_every_entries: i64,
    /// Largest response body the emulator sends as is; larger stored blobs (exports) answer
    /// `307` to a presigned URL, as every Lambda function does at 4 MiB
    /// (`STACKHOUSE_MAX_RESPONSE_BYTES`; unset: no limit). Lambda entry points ignore it.
    pub max_response_bytes: Option<usize>,
    /// Longest the emulator waits for a request's headers (`STACKHOUSE_HEADER_READ_TIMEOUT_SECONDS`,
    /// default 30): a client that never finishes them (slowloris) is dropped. API Gateway does
    /// this in front of Lambda.
    pub header_read_timeout_seconds: u64,
    /// Longest the emulator waits for a request's body once its headers are in
    /// (`STACKHOUSE_BODY_READ_TIMEOUT_SECONDS`, default 120: 64 MiB at about 0.5 MB/s); then 408.
    pub body_read_timeout_seconds: u64,
    /// Largest artifact (policy pack archive) an upload URL accepts and `complete` keeps
    /// (`STACKHOUSE_MAX_ARTIFACT_BYTES`, default 100 MiB).
    pub max_artifact_bytes: u64,
    /// Most artifact versions one organization may hold (`STACKHOUSE_ARTIFACT_QUOTA_COUNT`).
    pub artifact_quota_count: i64,
    /// Most artifact bytes one organization may hold, counting each version it publishes
    /// (`STACKHOUSE_ARTIFACT_QUOTA_BYTES`).
    pub artifact_quota_bytes: i64,
    /// Most windows of one deployment schedule `job-deployment-scheduler` makes into runs
    /// per pass (`STACKHOUSE_SCHEDULE_CATCHUP_PER_TICK`, default 5): after downtime, a
    /// schedule catches up oldest first over several passes.
    pub schedule_catchup_per_tick: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_request_bytes: 64 << 20,
            max_decoded_bytes: 512 << 20,
            lease_seconds: 300,
            checkpoint_cutoff_bytes: 512 * 1024,
            checkpoint_chain_deltas: 256,
            max_journal_batch_bytes: 4 << 20,
            journaling: true,
            history_retention: crate::service::retention::Policy::KeepAll,
            orphan_grace_seconds: crate::service::retention::DEFAULT_GRACE_SECONDS,
            webhook_allow_loopback: false,
            event_retention_seconds: 30 * 86_400,
            rate_limit_token: Some(crate::service::ratelimit::DEFAULT_TOKEN),
            rate_limit_org: Some(crate::service::ratelimit::DEFAULT_ORG),
            rate_limit_update: Some(crate::service::ratelimit::DEFAULT_UPDATE),
            materialise_every_entries: 1000,
            max_response_bytes: None,
            header_read_timeout_seconds: 30,
            body_read_timeout_seconds: 120,
            max_artifact_bytes: 100 << 20,
            artifact_quota_count: 1000,
            artifact_quota_bytes: 10 << 30,
            schedule_catchup_per_tick: 5,
        }
    }
}

impl Settings {
    /// Defaults, overridden by the variables of [`crate::config::VARS`] that are set; fails
    /// naming every variable that does not parse.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let mut env = Env::process();
        let settings = Settings::read(&mut env);
        env.finish().map(|()| settings)
    }

    /// Defaults, overridden by what `env` holds; problems are left in `env`.
    pub fn read(env: &mut Env<'_>) -> Settings {
        use crate::config::{bytes, count, positive_bytes, positive_seconds, seconds, switch};
        use crate::service::ratelimit::Limit;
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut s = Settings::default();
        if let Some(n) = env.parse("STACKHOUSE_MAX_REQUEST_BYTES", positive_bytes) {
            s.max_request_bytes = size(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_MAX_DECODED_BYTES", positive_bytes) {
            s.max_decoded_bytes = size(n);
        }
        if let Some(on) = env.parse("STACKHOUSE_JOURNALING", switch) {
            s.journaling = on;
        }
        if let Some(n) = env.parse("STACKHOUSE_MAX_JOURNAL_BATCH_BYTES", positive_bytes) {
            s.max_journal_batch_bytes = size(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_CHECKPOINT_CUTOFF_BYTES", bytes) {
            s.checkpoint_cutoff_bytes = signed(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_CHECKPOINT_CHAIN_DELTAS", count) {
            s.checkpoint_chain_deltas = signed(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_LEASE_SECONDS", positive_seconds) {
            s.lease_seconds = signed(n);
        }
        if let Some(policy) =
            env.parse("STACKHOUSE_HISTORY_RETENTION", crate::service::retention::Policy::parse)
        {
            s.history_retention = policy;
        }
        if let Some(n) = env.parse("STACKHOUSE_EVENT_RETENTION_SECONDS", positive_seconds) {
            s.event_retention_seconds = signed(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_ORPHAN_GRACE_SECONDS", seconds) {
            s.orphan_grace_seconds = signed(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_MATERIALISE_EVERY_ENTRIES", count) {
            s.materialise_every_entries = signed(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_MAX_RESPONSE_BYTES", bytes) {
            s.max_response_bytes = (n > 0).then(|| size(n));
        }
        if let Some(n) = env.parse("STACKHOUSE_HEADER_READ_TIMEOUT_SECONDS", positive_seconds) {
            s.header_read_timeout_seconds = n;
        }
        if let Some(n) = env.parse("STACKHOUSE_BODY_READ_TIMEOUT_SECONDS", positive_seconds) {
            s.body_read_timeout_seconds = n;
        }
        if let Some(n) = env.parse("STACKHOUSE_MAX_ARTIFACT_BYTES", positive_bytes) {
            s.max_artifact_bytes = n;
        }
        if let Some(n) = env.parse("STACKHOUSE_ARTIFACT_QUOTA_COUNT", count) {
            s.artifact_quota_count = signed(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_ARTIFACT_QUOTA_BYTES", bytes) {
            s.artifact_quota_bytes = signed(n);
        }
        if let Some(n) = env.parse("STACKHOUSE_SCHEDULE_CATCHUP_PER_TICK", count) {
            s.schedule_catchup_per_tick = size(n.max(1));
        }
        if let Some(on) = env.parse("STACKHOUSE_WEBHOOK_ALLOW_LOOPBACK", switch) {
            s.webhook_allow_loopback = on;
        }
        for (name, limit) in [
            ("STACKHOUSE_RATE_LIMIT_TOKEN", &mut s.rate_limit_token),
            ("STACKHOUSE_RATE_LIMIT_ORG", &mut s.rate_limit_org),
            ("STACKHOUSE_RATE_LIMIT_UPDATE", &mut s.rate_limit_update),
        ] {
            if let Some(parsed) = env.parse(name, Limit::parse) {
                *limit = parsed;
            }
        }
        s
    }
}

/// Wall clock in Unix seconds, with an offset tests can move forward.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        secs + self.offset.load(Ordering::Relaxed)
    }
    /// Now, as Unix seconds and the microseconds within that second, from one reading of the
    /// wall clock (so the pair never goes backwards across a second boundary).
    pub fn now_micros(&self) -> (i64, u32) {
        let d =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (d.as_secs() as i64 + self.offset.load(Ordering::Relaxed), d.subsec_micros())
    }
    /// Moves the clock forward (tests only: lease expiry without sleeping).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Ports, settings and clock.
pub struct App {
    /// The four ports.
    pub ports: Ports,
    /// Limits.
    pub settings: Settings,
    /// Time source.
    pub clock: Clock,
    /// Unwrapped data keys of recently used stacks (a cache that lives as long as this app,
    /// as it would in one Lambda sandbox).
    pub data_keys: crate::service::secrets::KeyCache,
    /// Request counts and latencies of this process.
    pub metrics: crate::telemetry::metrics::Metrics,
    /// This instance's mirrors of the token and organization rate-limit buckets.
    pub rate_limits: crate::service::ratelimit::LocalBuckets,
    /// Wakes this process's waiting event-stream readers (`service::feed`).
    pub feed_signal: crate::service::feed::Signal,
    /// The checkpoint states this process saved last (`service::updates::chain`).
    pub checkpoints: crate::service::updates::RecentStates,
    /// This process's copies of organizations' search indexes (`service::search::store`).
    pub search: crate::service::search::store::LocalIndexes,
    /// What starts deployment runners, where this process can (`ports::launcher`).
    pub launcher: crate::ports::launcher::LauncherSlot,
}

impl App {
    /// An app over the given ports.
    pub fn new(ports: Ports, settings: Settings) -> Arc<App> {
        Arc::new(App {
            ports,
            settings,
            clock: Clock::default(),
            data_keys: Default::default(),
            metrics: Default::default(),
            rate_limits: Default::default(),
            feed_signal: Default::default(),
            checkpoints: Default::default(),
            search: Default::default(),
            launcher: Default::default(),
        })
    }
}
