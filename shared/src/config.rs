//! Every environment variable Stackhouse reads, in one table ([`VARS`]: name, default, who reads
//! it, meaning), and the typed reader ([`Env`]) that the settings, the AWS adapter configuration
//! and the emulator read them through.
//!
//! A value that does not parse stops the start: the emulator exits and a Lambda function fails
//! its init, with one line per bad variable naming it (`STACKHOUSE_LEASE_SECONDS="5m": not a
//! whole number of seconds`). Running with a default the operator did not ask for is worse
//! than not running: a lease of 300 s where 5 was meant shows up as a stuck stack an hour later.
//! The README's settings table is rendered from [`VARS`] and a test keeps the two equal.

use std::fmt;

/// Which processes read a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBy {
    /// Every Lambda function and the emulator.
    All,
    /// Lambda functions only.
    Functions,
    /// The AWS adapters: Lambda functions, and the emulator with `--backend aws`.
    Aws,
    /// The local emulator only.
    Emulator,
}

impl ReadBy {
    fn label(self) -> &'static str {
        match self {
            ReadBy::All => "all",
            ReadBy::Functions => "functions",
            ReadBy::Aws => "AWS backend",
            ReadBy::Emulator => "emulator",
        }
    }
}

/// One environment variable.
#[derive(Debug)]
pub struct Var {
    /// Its name.
    pub name: &'static str,
    /// The value used when it is unset or empty, as an operator would write it (`–`: none).
    /// A test checks that these parse to [`crate::app::Settings::default`].
    pub default: &'static str,
    /// Who reads it.
    pub read_by: ReadBy,
    /// What it does (Markdown; the README's table shows it).
    pub meaning: &'static str,
}

const fn var(
    name: &'static str,
    default: &'static str,
    read_by: ReadBy,
    meaning: &'static str,
) -> Var {
    Var { name, default, read_by, meaning }
}

/// The default of a variable that has none.
const NONE: &str = "–";

/// Every variable, in the order the README lists them.
pub static VARS: &[Var] = &[
    var("STACKHOUSE_BACKEND", "aws", ReadBy::Functions, "Lambda functions accept only `aws`; the emulator takes `--backend` instead"),
    var("AWS_ENDPOINT_URL", NONE, ReadBy::Aws, "one endpoint for all AWS services (LocalStack, MinIO, moto; the emulator's `--aws-endpoint-url` wins); unset for real AWS"),
    var("AWS_ENDPOINT_URL_S3", NONE, ReadBy::Aws, "the endpoint of S3; wins over `AWS_ENDPOINT_URL` (S3 on MinIO, the rest on LocalStack). Path-style addressing whenever it is custom"),
    var("AWS_ENDPOINT_URL_DYNAMODB", NONE, ReadBy::Aws, "the endpoint of DynamoDB; wins over `AWS_ENDPOINT_URL`"),
    var("AWS_ENDPOINT_URL_SQS", NONE, ReadBy::Aws, "the endpoint of SQS; wins over `AWS_ENDPOINT_URL`"),
    var("AWS_ENDPOINT_URL_KMS", NONE, ReadBy::Aws, "the endpoint of KMS; wins over `AWS_ENDPOINT_URL`"),
    var("AWS_REGION", NONE, ReadBy::Aws, "the region (the SDK's own lookup when unset)"),
    var("STACKHOUSE_TABLE", "stackhouse", ReadBy::Aws, "DynamoDB table"),
    var("STACKHOUSE_BUCKET", "stackhouse-data", ReadBy::Aws, "S3 bucket"),
    var("STACKHOUSE_KMS_KEY_ID", "alias/stackhouse", ReadBy::Aws, "KMS key (id, ARN or alias)"),
    var("STACKHOUSE_QUEUE_PREFIX", "stackhouse-", ReadBy::Aws, "prefix of the SQS queue names"),
    var("STACKHOUSE_WEBSOCKET_ENDPOINT", NONE, ReadBy::Aws, "the event stream's WebSocket API stage URL (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`), where functions post frames to connected clients; set by the template"),
    var("STACKHOUSE_EVENTS_URL", NONE, ReadBy::Functions, "the event stream's WebSocket URL (`wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}`) the web console's pages follow running updates on; set by the template for the `console` function (the emulator's pages use its `--ws-listen`)"),
    var("STACKHOUSE_RUNNER_PROJECT", NONE, ReadBy::Aws, "the CodeBuild project whose builds run deployments (`job-deployment-start` starts one per run); set by the template"),
    var("STACKHOUSE_BOOTSTRAP_TOKEN", NONE, ReadBy::Emulator, "make sure this access token exists (for scripts and CI); otherwise the first start creates a random one and prints it once"),
    var("STACKHOUSE_BOOTSTRAP_USER", "admin", ReadBy::Emulator, "the first user"),
    var("STACKHOUSE_BOOTSTRAP_ORG", NONE, ReadBy::Emulator, "the first organization (the user is its admin); unset: the user name"),
    var("STACKHOUSE_MAX_REQUEST_BYTES", "64 MiB", ReadBy::All, "largest request body as sent (gzip or not); bytes, or with `KiB`/`MiB`/`GiB`"),
    var("STACKHOUSE_MAX_DECODED_BYTES", "512 MiB", ReadBy::All, "largest request body after gzip decoding"),
    var("STACKHOUSE_LEASE_SECONDS", "300", ReadBy::All, "lease length of an update (the CLI renews about every 2.5 minutes)"),
    var("STACKHOUSE_CHECKPOINT_CUTOFF_BYTES", "512 KiB", ReadBy::All, "deployments smaller than this are checkpointed verbatim, larger ones as deltas"),
    var("STACKHOUSE_CHECKPOINT_CHAIN_DELTAS", "256", ReadBy::All, "most checkpoint deltas stored after one full state: a delta save stores only the delta until then (or until the deltas weigh as much as the state), so rebuilding a state applies at most this many"),
    var("STACKHOUSE_MAX_JOURNAL_BATCH_BYTES", "4 MiB", ReadBy::All, "journal batches over this get 413 (the CLI halves them)"),
    var("STACKHOUSE_JOURNALING", "on", ReadBy::All, "`off` makes the CLI fall back to checkpoints (`on`/`off`, `1`/`0`, `true`/`false`)"),
    var("STACKHOUSE_MATERIALISE_EVERY_ENTRIES", "1000", ReadBy::All, "a journal-mode update asks `job-update-materialise` for a resumable snapshot each time this many more entries arrived, so completing, cancelling or reaping it replays only the tail (0 = never)"),
    var("STACKHOUSE_HISTORY_RETENTION", "all", ReadBy::All, "stack versions to keep: `all`, `versions:N` (the newest N) or `days:N`; the current version is always kept"),
    var("STACKHOUSE_ORPHAN_GRACE_SECONDS", "604800", ReadBy::All, "age (7 days) after which crash leftovers and the scratch blobs (checkpoints, journals, journal snapshots, events) of ended updates are removed; also how long an unreferenced artifact or an abandoned upload is kept"),
    var("STACKHOUSE_EVENT_RETENTION_SECONDS", "2592000", ReadBy::All, "how long (30 days) the events of `GET /api/orgs/{org}/events` are kept (see \"Event stream\")"),
    var("STACKHOUSE_RATE_LIMIT_TOKEN", "600", ReadBy::All, "requests per minute `[,burst]` (burst defaults to a minute's worth) of one access token; over it: 429 with `Retry-After`; `0` disables"),
    var("STACKHOUSE_RATE_LIMIT_ORG", "3000", ReadBy::All, "the same, per organization"),
    var("STACKHOUSE_RATE_LIMIT_UPDATE", "6000,2000", ReadBy::All, "the same, per running update's lease calls"),
    var("STACKHOUSE_MAX_ARTIFACT_BYTES", "100 MiB", ReadBy::All, "largest artifact (policy pack archive) an upload URL accepts and publishing keeps"),
    var("STACKHOUSE_ARTIFACT_QUOTA_COUNT", "1000", ReadBy::All, "most artifact versions (policy pack versions) one organization may hold; over it: 409"),
    var("STACKHOUSE_ARTIFACT_QUOTA_BYTES", "10 GiB", ReadBy::All, "most artifact bytes one organization may hold, each version counted (identical archives are stored once all the same); over it: 409"),
    var("STACKHOUSE_SCHEDULE_CATCHUP_PER_TICK", "5", ReadBy::All, "most windows of one deployment schedule made into runs per pass of `job-deployment-scheduler` (every minute): after downtime a schedule catches up, oldest first, over several passes"),
    var("STACKHOUSE_WEBHOOK_ALLOW_LOOPBACK", "off", ReadBy::All, "`on` lets webhooks target loopback, private and link-local addresses"),
    var("STACKHOUSE_REAPER_INTERVAL_SECONDS", "60", ReadBy::Emulator, "how often the emulator runs `job-lease-reaper` (0 = never)"),
    var("STACKHOUSE_DEPLOYMENT_REAPER_INTERVAL_SECONDS", "60", ReadBy::Emulator, "how often the emulator runs `job-deployment-reaper` (0 = never)"),
    var("STACKHOUSE_DEPLOYMENT_SCHEDULER_INTERVAL_SECONDS", "60", ReadBy::Emulator, "how often the emulator runs `job-deployment-scheduler` (0 = never)"),
    var("STACKHOUSE_HISTORY_RETENTION_INTERVAL_SECONDS", "3600", ReadBy::Emulator, "how often the emulator runs `job-history-retention` (0 = never)"),
    var("STACKHOUSE_ARTIFACT_GC_INTERVAL_SECONDS", "3600", ReadBy::Emulator, "how often the emulator runs `job-artifact-gc` (0 = never)"),
    var("STACKHOUSE_HEADER_READ_TIMEOUT_SECONDS", "30", ReadBy::Emulator, "longest wait for a request's headers (slowloris); see \"Limits\""),
    var("STACKHOUSE_BODY_READ_TIMEOUT_SECONDS", "120", ReadBy::Emulator, "longest wait for a request's body once its headers are in, then 408"),
    var("STACKHOUSE_MAX_RESPONSE_BYTES", NONE, ReadBy::Emulator, "exports whose stored gzip is larger answer `307` to a presigned URL, as every Lambda function does at 4 MiB; unset: no limit"),
    var("STACKHOUSE_LOG", "info", ReadBy::All, "log filter (`tracing` syntax; `RUST_LOG` when unset); logs go to stderr"),
    var("STACKHOUSE_LOG_FORMAT", "text", ReadBy::Emulator, "`json` for JSON lines (Lambda functions always log JSON)"),
];

/// The entry of `name` in [`VARS`].
pub fn lookup_var(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name == name)
}

/// The README's table of [`VARS`] (a test checks the README holds exactly this).
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | read by | meaning |\n|---|---|---|---|\n");
    for v in VARS {
        let default = if v.default == NONE { NONE.to_string() } else { format!("`{}`", v.default) };
        out.push_str(&format!(
            "| `{}` | {default} | {} | {} |\n",
            v.name,
            v.read_by.label(),
            v.meaning
        ));
    }
    out
}

/// Variables that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// One line per variable: `NAME="value": why`.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the configuration does not parse:")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables through a lookup (the process environment, or a map in tests), collecting
/// every problem rather than stopping at the first, so one start shows them all.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

fn process_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Env<'static> {
    /// The process environment.
    pub fn process() -> Env<'static> {
        Env { lookup: &process_lookup, problems: Vec::new() }
    }
}

impl<'a> Env<'a> {
    /// Variables from `lookup`.
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env { lookup, problems: Vec::new() }
    }

    /// The trimmed value of `name`; `None` when unset or empty (SAM templates pass "" for "not
    /// configured").
    pub fn text(&self, name: &str) -> Option<String> {
        debug_assert!(lookup_var(name).is_some(), "{name} is read but not listed in config::VARS");
        (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// The value of `name`, else its default in [`VARS`] (`None` when it has none).
    pub fn text_or_default(&self, name: &str) -> Option<String> {
        self.text(name).or_else(|| {
            lookup_var(name).filter(|v| v.default != NONE).map(|v| v.default.to_string())
        })
    }

    /// The value of `name` parsed by `parse`; `None` when unset, or when it does not parse
    /// (then the problem is recorded and [`Env::finish`] fails).
    pub fn parse<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.text(name)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(why) => {
                self.problems.push(format!("{name}={text:?}: {why}"));
                None
            }
        }
    }

    /// `Ok` when every variable read so far parsed.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems: self.problems })
        }
    }
}

/// A whole number of seconds (no units: the variables say `_SECONDS`).
pub fn seconds(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| "not a whole number of seconds".to_string())
}

/// Like [`seconds`], at least 1.
pub fn positive_seconds(text: &str) -> Result<u64, String> {
    seconds(text).and_then(|n| if n == 0 { Err("must be at least 1 second".into()) } else { Ok(n) })
}

/// A count.
pub fn count(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| "not a whole number".to_string())
}

/// A size in bytes: `1048576`, `1024 KiB`, `1 MiB`, `1GiB`.
pub fn bytes(text: &str) -> Result<u64, String> {
    let bad = || "not a size (bytes, or a whole number with KiB, MiB or GiB)".to_string();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim() {
        "" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return Err(bad()),
    };
    number.checked_mul(1 << shift).ok_or_else(|| "too large".to_string())
}

/// Like [`bytes`], at least 1.
pub fn positive_bytes(text: &str) -> Result<u64, String> {
    bytes(text).and_then(|n| if n == 0 { Err("must be at least 1 byte".into()) } else { Ok(n) })
}

/// `on`/`off`, `1`/`0`, `true`/`false`, `yes`/`no` (any case).
pub fn switch(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" | "yes" => Ok(true),
        "off" | "0" | "false" | "no" => Ok(false),
        _ => Err("not on or off (also 1/0, true/false, yes/no)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_take_binary_units_and_refuse_the_rest() {
        assert_eq!(bytes("4194304"), Ok(4 << 20));
        assert_eq!(bytes("4 MiB"), Ok(4 << 20));
        assert_eq!(bytes("512KiB"), Ok(512 << 10));
        assert_eq!(bytes("1 GiB"), Ok(1 << 30));
        for bad in
            ["", "4MB", "4 mib", "-1", "1.5 MiB", "MiB", "99999999999999999999", "17179869184 GiB"]
        {
            assert!(bytes(bad).is_err(), "{bad:?}");
        }
        assert!(positive_bytes("0").is_err());
    }

    #[test]
    fn seconds_take_no_units() {
        assert_eq!(seconds("300"), Ok(300));
        assert!(seconds("5m").is_err());
        assert!(positive_seconds("0").is_err());
    }

    #[test]
    fn switches() {
        assert_eq!(switch("OFF"), Ok(false));
        assert_eq!(switch("1"), Ok(true));
        assert!(switch("maybe").is_err());
    }

    #[test]
    fn env_names_every_bad_variable_and_treats_empty_as_unset() {
        let lookup = |name: &str| match name {
            "STACKHOUSE_LEASE_SECONDS" => Some("5m".to_string()),
            "STACKHOUSE_MAX_REQUEST_BYTES" => Some("lots".to_string()),
            "STACKHOUSE_TABLE" => Some("  ".to_string()),
            _ => None,
        };
        let mut env = Env::new(&lookup);
        assert_eq!(env.parse("STACKHOUSE_LEASE_SECONDS", positive_seconds), None);
        assert_eq!(env.parse("STACKHOUSE_MAX_REQUEST_BYTES", bytes), None);
        assert_eq!(env.text("STACKHOUSE_TABLE"), None);
        let err = env.finish().unwrap_err().to_string();
        assert!(
            err.contains("STACKHOUSE_LEASE_SECONDS=\"5m\": not a whole number of seconds"),
            "{err}"
        );
        assert!(err.contains("STACKHOUSE_MAX_REQUEST_BYTES=\"lots\""), "{err}");
    }

    /// The defaults the table shows are the ones the code runs with.
    #[test]
    fn the_table_shows_the_real_defaults() {
        let defaults = |name: &str| {
            lookup_var(name).filter(|v| v.default != NONE).map(|v| v.default.to_string())
        };
        let mut env = Env::new(&defaults);
        let settings = crate::app::Settings::read(&mut env);
        assert_eq!(env.finish(), Ok(()));
        assert_eq!(settings, crate::app::Settings::default());
        let aws = crate::adapters::aws::AwsConfig::read(&Env::new(&|_| None));
        assert_eq!(Some(aws.table), defaults("STACKHOUSE_TABLE"));
        assert_eq!(Some(aws.queue_prefix), defaults("STACKHOUSE_QUEUE_PREFIX"));
    }

    /// The README's settings table is this table: a variable added, renamed or given a new
    /// default here fails until the README says so too.
    #[test]
    fn the_readme_shows_this_table() {
        let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let text = std::fs::read_to_string(readme).unwrap_or_default();
        let table = markdown_table();
        assert!(
            text.contains(&table),
            "README.md's settings table differs from config::VARS; it should read:\n\n{table}"
        );
    }

    #[test]
    fn names_are_unique() {
        for (i, v) in VARS.iter().enumerate() {
            assert!(VARS[..i].iter().all(|w| w.name != v.name), "{} twice", v.name);
        }
    }

    proptest! {
        /// Whatever an operator types, the size parser answers without panicking, and what it
        /// accepts round-trips through the plain byte count.
        #[test]
        fn sizes_never_panic(text in "\\PC{0,24}") {
            if let Ok(n) = bytes(&text) {
                prop_assert_eq!(bytes(&n.to_string()), Ok(n));
            }
        }
    }
}
