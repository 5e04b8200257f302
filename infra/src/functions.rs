//! Every Lambda function: one per route, one per socket route of the event stream's WebSocket
//! API and one per job, with its events, needs and environment.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use stackhouse::api::routes::{ORG_EVENTS_LIST, ROUTES};
use stackhouse::api::sockets::SOCKETS;
use stackhouse::api::{Access, Auth, Needs};
use stackhouse::jobs::table::JOBS;
use stackhouse::jobs::Trigger;

use super::resources::{r#ref, sub, WEBSOCKET_DOMAIN};

/// API Gateway gives an HTTP API integration at most 30 s; a function answers before that.
/// (Jobs have their own timeouts in the job table.)
pub const TIMEOUT_SECONDS: u32 = 29;

/// Memory of functions that only touch metadata and keys (CPU scales with memory).
pub const MEMORY_MB: u32 = 512;

/// Memory of functions that move blobs: checkpoints and exports of tens of MB are gzip-decoded
/// and parsed in memory (docs/ARCHITECTURE.md, Payload limits).
pub const BLOB_MEMORY_MB: u32 = 1024;

/// What triggers a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A route of the shared HTTP API (same `{param}` path syntax as the route table).
    HttpApi {
        /// HTTP method, upper case.
        method: String,
        /// Path template.
        path: String,
    },
    /// An EventBridge schedule invoking the function every `every_seconds` (whole minutes).
    Schedule {
        /// Period in seconds.
        every_seconds: u64,
    },
    /// An SQS event source on a queue of [`default_queues`], with partial batch responses.
    Sqs {
        /// Logical queue name.
        queue: String,
        /// Most messages per invocation.
        batch_size: usize,
    },
    /// A route of the event stream's WebSocket API (`$connect`, `$disconnect`, `$default`).
    WebSocket {
        /// API Gateway's route key.
        route_key: String,
    },
    /// The table's DynamoDB stream, filtered to inserts of items whose keys start with one of
    /// the `(pk, sk)` prefix pairs.
    Stream {
        /// `(pk prefix, sk prefix)` of the inserts that trigger the function.
        inserts: Vec<(String, String)>,
        /// Most records per invocation.
        batch_size: usize,
    },
}

/// An EventBridge rate expression: `rate(1 minute)`, `rate(2 hours)`, `rate(5 minutes)`.
pub fn rate_expression(every_seconds: u64) -> String {
    let minutes = (every_seconds / 60).max(1);
    let (n, unit) = if minutes.is_multiple_of(1440) {
        (minutes / 1440, "day")
    } else if minutes.is_multiple_of(60) {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    format!("rate({n} {unit}{})", if n == 1 { "" } else { "s" })
}

/// One Lambda function of the template.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Route or job name: the binary under `functions/` and the base of the logical id.
    pub name: &'static str,
    /// Shown in the Lambda console.
    pub description: String,
    /// What invokes it.
    pub events: Vec<Event>,
    /// What it uses of each port: drives its IAM policy.
    pub needs: Needs,
    /// Environment variables (values may be intrinsics such as `{"Ref": "Table"}`).
    pub env: BTreeMap<String, Value>,
    /// Memory size in MB.
    pub memory_mb: u32,
    /// Timeout in seconds.
    pub timeout_seconds: u32,
    /// Lambda's `/tmp` in MB, when the default 512 MB is not enough ([`ephemeral_for`]).
    pub ephemeral_mb: Option<u32>,
    /// Authenticates access tokens, so records their last use whatever its needs say
    /// ([`bookkeeping_statement`]).
    pub token_auth: bool,
    /// The nested stack it deploys in: its route's domain, or [`JOBS_STACK`].
    pub stack: &'static str,
}

/// The nested stack of the background jobs' functions.
pub const JOBS_STACK: &str = "jobs";

/// The nested stack of the socket routes' functions: the event stream's domain, beside the
/// route that reads the stream over HTTP.
pub const SOCKETS_STACK: &str = ORG_EVENTS_LIST.domain;

impl FunctionSpec {
    /// Logical id of the function: `stack-get` → `StackGetFunction`.
    pub fn logical_id(&self) -> String {
        format!("{}Function", pascal(self.name))
    }
    /// Logical id of its IAM role.
    pub fn role_id(&self) -> String {
        format!("{}Role", self.logical_id())
    }
    /// Logical id of its log group.
    pub fn log_group_id(&self) -> String {
        format!("{}LogGroup", self.logical_id())
    }
}

/// `stack-get` → `StackGet`.
pub fn pascal(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The environment every function gets: where the AWS adapters find their resources
/// (`AwsConfig::from_env`) and the settings parameters. All four resources go to every
/// function even when its needs leave some out: names are not secrets, the adapter set is
/// built whole at cold start, and a function lacking the permission fails with a clear
/// AccessDenied naming the resource rather than talking to a default-named one. The values
/// are parameters of the function's nested stack, which the root template passes in
/// ([`crate::shared_parameters`]).
pub fn base_env() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("STACKHOUSE_BACKEND".to_string(), json!("aws")),
        ("STACKHOUSE_TABLE".to_string(), r#ref("Table")),
        ("STACKHOUSE_BUCKET".to_string(), r#ref("Bucket")),
        ("STACKHOUSE_KMS_KEY_ID".to_string(), r#ref("KeyArn")),
        ("STACKHOUSE_QUEUE_PREFIX".to_string(), r#ref("QueuePrefix")),
        ("STACKHOUSE_LOG".to_string(), r#ref("LogLevel")),
        ("STACKHOUSE_HISTORY_RETENTION".to_string(), r#ref("HistoryRetention")),
    ])
}

/// [`base_env`], plus for a function that pushes to WebSocket clients the management API's
/// endpoint: the WebSocket API's stage URL (parameters `WebSocketApi` and `WebSocketStage`).
pub fn env_for(needs: &Needs) -> BTreeMap<String, Value> {
    let mut env = base_env();
    if needs.push != Access::None {
        env.insert(
            "STACKHOUSE_WEBSOCKET_ENDPOINT".to_string(),
            sub(&format!("https://{WEBSOCKET_DOMAIN}/${{WebSocketStage}}")),
        );
    }
    if needs.launch != Access::None {
        env.insert("STACKHOUSE_RUNNER_PROJECT".to_string(), r#ref(crate::runner::PROJECT_ID));
    }
    env
}

/// `/tmp` of the functions that keep a copy of an organization's search index (the search
/// routes but stack search, and the indexing jobs): the index takes about 440 bytes per
/// resource (437 MB at 1,000,000, docs/BENCHMARKS.md "Resource search"), a process fetches the
/// next generation beside the one it holds, and an indexing run builds in a working copy, so
/// the default 512 MB would not hold an organization of a million resources.
pub const SEARCH_TMP_MB: u32 = 4096;

/// The `/tmp` a function needs beyond Lambda's default, by its name.
pub fn ephemeral_for(name: &str) -> Option<u32> {
    (name.starts_with("org-search-resources") || name.starts_with("job-search-"))
        .then_some(SEARCH_TMP_MB)
}

pub(super) fn memory_for(needs: &Needs) -> u32 {
    if needs.blobs == Access::None {
        MEMORY_MB
    } else {
        BLOB_MEMORY_MB
    }
}

/// Every function of the template: one per route of the route table, one per socket route,
/// then one per job of the job table.
pub fn functions() -> Vec<FunctionSpec> {
    let routes = ROUTES.iter().map(|route| FunctionSpec {
        name: route.name,
        description: format!("Stackhouse {} {} ({})", route.method, route.path, route.name),
        events: vec![Event::HttpApi {
            method: route.method.as_str().to_string(),
            path: route.path.to_string(),
        }],
        needs: route.needs,
        env: env_for(&route.needs),
        memory_mb: memory_for(&route.needs),
        timeout_seconds: TIMEOUT_SECONDS,
        ephemeral_mb: ephemeral_for(route.name),
        token_auth: route.auth() == Auth::User,
        stack: route.domain,
    });
    let sockets = SOCKETS.iter().map(|socket| FunctionSpec {
        name: socket.name,
        description: format!(
            "Stackhouse WebSocket {}: {} ({})",
            socket.route_key, socket.description, socket.name
        ),
        events: vec![Event::WebSocket { route_key: socket.route_key.to_string() }],
        needs: socket.needs,
        env: env_for(&socket.needs),
        memory_mb: memory_for(&socket.needs),
        // A WebSocket integration gets at most 29 s as well.
        timeout_seconds: TIMEOUT_SECONDS,
        ephemeral_mb: ephemeral_for(socket.name),
        // `$connect` authenticates the access token (its last use is recorded).
        token_auth: socket.route_key == "$connect",
        stack: SOCKETS_STACK,
    });
    let jobs = JOBS.iter().map(|job| FunctionSpec {
        name: job.name,
        description: format!("Stackhouse job: {} ({})", job.description, job.name),
        events: match job.trigger {
            Trigger::Schedule { every_seconds, .. } => vec![Event::Schedule { every_seconds }],
            Trigger::Queue { queue, batch_size, .. } => {
                vec![Event::Sqs { queue: queue.to_string(), batch_size }]
            }
            // Invoked by hand (`aws lambda invoke`): no event source.
            Trigger::Manual { .. } => vec![],
            Trigger::Stream { inserts, batch_size, .. } => vec![Event::Stream {
                inserts: inserts.iter().map(|(pk, sk)| (pk.to_string(), sk.to_string())).collect(),
                batch_size,
            }],
        },
        needs: job.needs,
        env: env_for(&job.needs),
        memory_mb: memory_for(&job.needs),
        timeout_seconds: job.timeout_seconds,
        ephemeral_mb: ephemeral_for(job.name),
        token_auth: false,
        stack: JOBS_STACK,
    });
    routes.chain(sockets).chain(std::iter::once(console())).chain(jobs).collect()
}

/// The nested stack of the web console's function.
pub const CONSOLE_STACK: &str = "console";

/// The web console (`functions/src/console.rs`): the page and files of the console at the
/// HTTP API's root, on `GET /` and `GET /{proxy+}` (API Gateway prefers every more specific
/// route, so the API's routes keep their functions). It touches no port; its pages follow
/// running updates on the event stream's WebSocket API, whose URL it tells them.
pub fn console() -> FunctionSpec {
    let get = |path: &str| Event::HttpApi { method: "GET".into(), path: path.into() };
    FunctionSpec {
        name: "console",
        description: "Stackhouse web console: its page and files (console)".into(),
        events: vec![get("/"), get("/{proxy+}")],
        needs: Needs::NOTHING,
        env: BTreeMap::from([
            ("STACKHOUSE_LOG".to_string(), r#ref("LogLevel")),
            (
                "STACKHOUSE_EVENTS_URL".to_string(),
                sub(&format!("wss://{WEBSOCKET_DOMAIN}/${{WebSocketStage}}")),
            ),
        ]),
        // Static bytes: the smallest function there is.
        memory_mb: 128,
        timeout_seconds: 5,
        ephemeral_mb: None,
        token_auth: false,
        stack: CONSOLE_STACK,
    }
}
