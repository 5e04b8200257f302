//! Background jobs: the job table ([`table::JOBS`], the single source of truth next to the
//! route table), their transport-neutral handlers, the generic queue consumer and the Lambda
//! event shapes (docs/ARCHITECTURE.md, Background jobs).
//!
//! A job is triggered either by a schedule (EventBridge in AWS, a timer in the emulator) or by
//! a queue (an SQS event source in AWS, the emulator's consumer). Its handler never knows which
//! transport runs it:
//!
//! - a **scheduled** handler gets the app and the current time and returns a JSON report;
//! - a **queue** handler gets a batch of messages and returns the ids of those that failed
//!   (partial batch failure). Failed messages become visible again after a backoff growing
//!   with their receive count, and land in the queue's dead-letter queue after
//!   `max_receives` (see [`queue`]). Handlers must be idempotent: delivery is at least once.
//!
//! Each job is its own Lambda function `functions/src/bin/<name>.rs`, a few lines around
//! `stackhouse_lambda::run_job` (the `functions` crate).

pub mod consumer;
pub mod invocation;
pub mod table;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::app::App;
use crate::error::Result;
use crate::ports::Message;
use crate::ports::Needs;

/// The JSON reports scheduled jobs return (re-exported for the handler macros).
pub type Json = serde_json::Value;

/// A boxed job future.
pub type JobFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A scheduled job's handler: `(app, now in Unix seconds) -> report`.
pub type ScheduledFn = fn(Arc<App>, i64) -> JobFuture<Result<Json>>;

/// A queue job's handler: `(app, batch) -> ids of the messages that failed`.
pub type BatchFn = fn(Arc<App>, Vec<Message>) -> JobFuture<Vec<String>>;

/// A manually invoked job's handler: `(app, payload) -> response`.
pub type ManualFn = fn(Arc<App>, Json) -> JobFuture<Result<Json>>;

/// A table-stream job's handler: `(app, partition keys of the inserted items) -> report`.
pub type StreamFn = fn(Arc<App>, Vec<String>) -> JobFuture<Result<Json>>;

/// What runs a job, with its handler.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    /// Every `every_seconds` (an EventBridge `rate(…)` schedule; a timer in the emulator).
    Schedule {
        /// Period in seconds (a whole number of minutes, at least one: EventBridge's grain).
        every_seconds: u64,
        /// The handler.
        run: ScheduledFn,
    },
    /// Batches of messages of a queue (an SQS event source with partial batch responses; the
    /// emulator's consumer).
    Queue {
        /// Logical queue name; must be one of [`crate::ports::queue::default_queues`].
        queue: &'static str,
        /// Most messages per batch (1..=10).
        batch_size: usize,
        /// The handler.
        run: BatchFn,
    },
    /// Only when an operator invokes it (`aws lambda invoke` with a JSON payload): no schedule,
    /// no queue, no event source in the template.
    Manual {
        /// The handler.
        run: ManualFn,
    },
    /// Items inserted into the metadata table (the table's DynamoDB stream, filtered to
    /// inserts whose keys start with one of `inserts`; in the emulator, the writes of its own
    /// process that [`crate::service::feed::Signal`] reports).
    Stream {
        /// `(pk prefix, sk prefix)` of the inserted items that trigger it.
        inserts: &'static [(&'static str, &'static str)],
        /// Most records per batch (1..=10000).
        batch_size: usize,
        /// The handler.
        run: StreamFn,
    },
}

/// One entry of the job table.
#[derive(Debug)]
pub struct Job {
    /// Function name: the Lambda binary under `functions/`, the SAM logical id's base and the
    /// sample event `events/<name>.json`. Starts with `job-`.
    pub name: &'static str,
    /// One line for the Lambda console and the docs.
    pub description: &'static str,
    /// What runs it.
    pub trigger: Trigger,
    /// What the handler uses of each port: drives least-privilege IAM (infra/).
    pub needs: Needs,
    /// Longest run, in seconds (Lambda timeout; a queue job's must not exceed its queue's
    /// visibility timeout).
    pub timeout_seconds: u32,
}

/// Wraps an `async fn(Arc<App>, i64) -> Result<impl Serialize>` into a [`ScheduledFn`]:
/// `scheduled!(reaper)`.
#[macro_export]
macro_rules! scheduled {
    ($f:path) => {{
        fn h(
            app: ::std::sync::Arc<$crate::app::App>,
            now: i64,
        ) -> $crate::jobs::JobFuture<$crate::error::Result<$crate::jobs::Json>> {
            Box::pin(async move { $crate::jobs::to_report($f(app, now).await) })
        }
        h as $crate::jobs::ScheduledFn
    }};
}

/// Wraps an `async fn(Arc<App>, Vec<Message>) -> Vec<String>` into a [`BatchFn`]:
/// `batch!(deliver)`.
#[macro_export]
macro_rules! batch {
    ($f:path) => {{
        fn h(
            app: ::std::sync::Arc<$crate::app::App>,
            messages: ::std::vec::Vec<$crate::ports::Message>,
        ) -> $crate::jobs::JobFuture<::std::vec::Vec<::std::string::String>> {
            Box::pin($f(app, messages))
        }
        h as $crate::jobs::BatchFn
    }};
}

/// Wraps an `async fn(Arc<App>, Json) -> Result<impl Serialize>` into a [`ManualFn`]:
/// `manual!(admin_create_user)`.
#[macro_export]
macro_rules! manual {
    ($f:path) => {{
        fn h(
            app: ::std::sync::Arc<$crate::app::App>,
            payload: $crate::jobs::Json,
        ) -> $crate::jobs::JobFuture<$crate::error::Result<$crate::jobs::Json>> {
            Box::pin(async move { $crate::jobs::to_report($f(app, payload).await) })
        }
        h as $crate::jobs::ManualFn
    }};
}

/// Wraps an `async fn(Arc<App>, Vec<String>) -> Result<impl Serialize>` into a [`StreamFn`]:
/// `stream!(feed_fanout)`.
#[macro_export]
macro_rules! stream {
    ($f:path) => {{
        fn h(
            app: ::std::sync::Arc<$crate::app::App>,
            keys: ::std::vec::Vec<::std::string::String>,
        ) -> $crate::jobs::JobFuture<$crate::error::Result<$crate::jobs::Json>> {
            Box::pin(async move { $crate::jobs::to_report($f(app, keys).await) })
        }
        h as $crate::jobs::StreamFn
    }};
}

/// Turns a handler's typed report into JSON (used by [`scheduled!`]).
pub fn to_report<T: serde::Serialize>(result: Result<T>) -> Result<Json> {
    let report = result?;
    serde_json::to_value(report).map_err(|e| crate::Error::caused("JSON encoding", e))
}

/// The job's name without the `job-` prefix, as logs and the emulator show it.
pub fn short_name(job: &Job) -> &'static str {
    job.name.strip_prefix("job-").unwrap_or(job.name)
}

/// `job-lease-reaper`: ends updates whose lease lapsed (see [`crate::service::reaper`]).
pub async fn lease_reaper(app: Arc<App>, now: i64) -> Result<crate::service::reaper::ReapReport> {
    let report = crate::service::reaper::run(&app, now).await?;
    tracing::info!(report = ?report, "job-lease-reaper");
    if report.errors > 0 {
        // Failing the invocation makes the errors visible (Lambda metrics, emulator logs);
        // what was done stays done and the next run retries the rest.
        return Err(crate::Error::internal(format!(
            "{} updates could not be reaped this time",
            report.errors
        )));
    }
    Ok(report)
}

/// `job-webhook-deliver`: posts webhook deliveries (see
/// [`crate::service::webhook_deliveries`]).
pub async fn webhook_deliver(app: Arc<App>, messages: Vec<Message>) -> Vec<String> {
    crate::service::webhook_deliveries::deliver_batch(&app, messages).await
}

/// `job-deployment-reaper`: fails runs whose runner stopped reporting, requeues lost ones
/// (see [`crate::service::deploy::dispatch::reap`]).
pub async fn deployment_reaper(
    app: Arc<App>,
    now: i64,
) -> Result<crate::service::deploy::dispatch::ReapReport> {
    let report = crate::service::deploy::dispatch::reap(&app, now).await?;
    tracing::info!(report = ?report, "job-deployment-reaper");
    Ok(report)
}

/// `job-deployment-scheduler`: makes due schedule windows into runs (see
/// [`crate::service::deploy::scheduler::tick`]).
pub async fn deployment_scheduler(
    app: Arc<App>,
    now: i64,
) -> Result<crate::service::deploy::scheduler::TickReport> {
    let per_tick = app.settings.schedule_catchup_per_tick;
    let report = crate::service::deploy::scheduler::tick(&app, now, per_tick).await?;
    tracing::info!(report = ?report, "job-deployment-scheduler");
    Ok(report)
}

/// `job-deployment-start`: starts queued deployment runs (see
/// [`crate::service::deploy::dispatch::start`]); a message that fails is retried.
pub async fn deployment_start(app: Arc<App>, messages: Vec<Message>) -> Vec<String> {
    let mut failed = Vec::new();
    for m in messages {
        let id = serde_json::from_str::<serde_json::Value>(&m.body)
            .ok()
            .and_then(|v| v["deployment"].as_str().map(str::to_string));
        let Some(id) = id else {
            tracing::warn!(message = %m.id, "job-deployment-start: a message without a deployment");
            continue;
        };
        if let Err(e) = crate::service::deploy::dispatch::start(&app, &id).await {
            tracing::warn!(deployment = %id, error = %e, "job-deployment-start: will retry");
            failed.push(m.id.clone());
        }
    }
    failed
}

/// `job-update-materialise`: snapshots long journal-mode updates (see
/// [`crate::service::materialise`]).
pub async fn update_materialise(app: Arc<App>, messages: Vec<Message>) -> Vec<String> {
    crate::service::materialise::handle_batch(&app, messages).await
}

/// `job-history-retention`: prunes history and removes orphaned blobs (see
/// [`crate::service::retention`]).
pub async fn history_retention(
    app: Arc<App>,
    now: i64,
) -> Result<crate::service::retention::RetentionReport> {
    let report = crate::service::retention::run(&app, now).await?;
    tracing::info!(report = ?report, "job-history-retention");
    if report.errors > 0 {
        return Err(crate::Error::internal(format!(
            "{} stacks or updates could not be cleaned this time",
            report.errors
        )));
    }
    Ok(report)
}

/// `job-artifact-gc`: removes unreferenced artifacts and abandoned uploads older than the
/// orphan grace period (see [`crate::service::artifacts::collect`]).
pub async fn artifact_gc(app: Arc<App>, now: i64) -> Result<crate::service::artifacts::Collected> {
    let grace = app.settings.orphan_grace_seconds;
    let report = crate::service::artifacts::collect(&app, now, grace).await?;
    tracing::info!(report = ?report, "job-artifact-gc");
    Ok(report)
}

/// `job-feed-fanout`: sends new events to the event stream's WebSocket clients, for each
/// organization whose events or connections the batch names (see
/// [`crate::service::feed::fanout`]).
pub async fn feed_fanout(
    app: Arc<App>,
    keys: Vec<String>,
) -> Result<crate::service::feed::fanout::Report> {
    let mut orgs: Vec<&str> =
        keys.iter().filter_map(|pk| crate::service::feed::org_of_stream_key(pk)).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let mut total = crate::service::feed::fanout::Report::default();
    let mut failed = 0;
    for org in orgs {
        match crate::service::feed::fanout::run(&app, org).await {
            Ok(r) => total.add(&r),
            Err(e) => {
                tracing::warn!(org, error = %e.chain(), "fan-out failed");
                failed += 1;
            }
        }
    }
    if failed > 0 || total.failed > 0 {
        // The stream retries the batch (the emulator, its organizations): what was sent is not
        // sent twice (each connection's position), and refused pushes are tried again.
        return Err(crate::Error::Unavailable(format!(
            "fan-out failed for {failed} organizations and {} connections",
            total.failed
        )));
    }
    Ok(total)
}

/// `job-search-index`: brings the search index of each organization the batch's events belong
/// to up to date with its stacks (see [`crate::service::search::indexer`]).
pub async fn search_index(
    app: Arc<App>,
    keys: Vec<String>,
) -> Result<Vec<crate::service::search::indexer::Report>> {
    let mut orgs: Vec<&str> = keys.iter().filter_map(|pk| pk.strip_prefix("FEED#")).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let mut reports = Vec::new();
    let mut failed = 0;
    for org in orgs {
        match crate::service::search::indexer::run(&app, org, false).await {
            Ok(r) => reports.push(r),
            Err(e) => {
                tracing::warn!(org, error = %e.chain(), "search indexing failed");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        // The stream retries the batch: a run that finds nothing changed writes nothing.
        return Err(crate::Error::Unavailable(format!(
            "indexing failed for {failed} organizations"
        )));
    }
    Ok(reports)
}

/// `job-search-reindex` `{"org": …}`: rebuilds the organization's search index from scratch.
pub async fn search_reindex(
    app: Arc<App>,
    payload: Json,
) -> Result<crate::service::search::indexer::Report> {
    let org = payload
        .get("org")
        .and_then(Json::as_str)
        .ok_or_else(|| crate::Error::BadRequest("expected {\"org\": …}".into()))?;
    let org = crate::names::OrgName::parse(org)?;
    crate::service::search::indexer::run(&app, org.as_str(), true).await
}

/// `job-admin-create-user`: creates a user with a role in an organization and returns a new
/// personal access token (see [`crate::service::admin`]). How a deployed stack gets its first
/// token.
pub async fn admin_create_user(
    app: Arc<App>,
    payload: Json,
) -> Result<crate::service::admin::CreateUserResponse> {
    let req: crate::service::admin::CreateUserRequest =
        serde_json::from_value(payload).map_err(|e| {
            crate::Error::BadRequest(format!(
                "expected {{\"name\": …, \"org\": …, \"role\": \"admin\"|\"member\"}}: {e}"
            ))
        })?;
    let req = req.validate()?;
    let token =
        crate::service::admin::create_user(app.ports.meta.as_ref(), &req, app.clock.now()).await?;
    // Never the token: it is for the invoker's eyes only.
    tracing::info!(user = req.name.as_str(), org = req.org.as_str(), "user created");
    Ok(crate::service::admin::CreateUserResponse { token })
}
