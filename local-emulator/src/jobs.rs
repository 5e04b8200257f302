//! Background jobs in the emulator: every job of the job table runs here with the same handler
//! its Lambda function runs, scheduled jobs on timers and queue jobs by polling their queue (the
//! embedded queue, or SQS on the AWS backend).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stackhouse::config::Env;
use stackhouse::jobs::consumer::{poll_once, Backoff};
use stackhouse::jobs::table::JOBS;
use stackhouse::jobs::{short_name, Job, Trigger};
use stackhouse::telemetry::metrics::JobRun;
use stackhouse::App;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which jobs run and how often.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The jobs to run.
    pub jobs: Vec<&'static Job>,
    /// Period of a scheduled job by name, overriding the table's; zero disables the job.
    pub intervals: HashMap<&'static str, Duration>,
    /// Wait after a poll that found a queue empty (or failed), unless a send of this process
    /// rings the queue's bell first (`crate::bells`).
    pub idle_poll: Duration,
    /// How failed queue messages are retried.
    pub backoff: Backoff,
}

impl Default for RunnerConfig {
    /// Every job of the table at its table period; queues polled every second when idle.
    fn default() -> Self {
        RunnerConfig {
            jobs: JOBS.to_vec(),
            intervals: HashMap::new(),
            idle_poll: Duration::from_secs(1),
            backoff: Backoff::default(),
        }
    }
}

/// The environment variable overriding a scheduled job's period in the emulator:
/// `STACKHOUSE_REAPER_INTERVAL_SECONDS` for the lease reaper (a fixed interface), else
/// `STACKHOUSE_<JOB>_INTERVAL_SECONDS` (`job-history-retention` →
/// `STACKHOUSE_HISTORY_RETENTION_INTERVAL_SECONDS`).
pub fn interval_env(job: &Job) -> String {
    match short_name(job) {
        "lease-reaper" => "STACKHOUSE_REAPER_INTERVAL_SECONDS".to_string(),
        other => format!("STACKHOUSE_{}_INTERVAL_SECONDS", other.to_uppercase().replace('-', "_")),
    }
}

impl RunnerConfig {
    /// Defaults with the periods given in `env` ([`interval_env`]).
    pub fn read(env: &mut Env<'_>) -> RunnerConfig {
        let mut cfg = RunnerConfig::default();
        for job in JOBS.iter().filter(|j| matches!(j.trigger, Trigger::Schedule { .. })) {
            if let Some(secs) = env.parse(&interval_env(job), stackhouse::config::seconds) {
                cfg.intervals.insert(job.name, Duration::from_secs(secs));
            }
        }
        cfg
    }

    /// The period `job` runs at, if it is scheduled and enabled.
    pub fn period(&self, job: &Job) -> Option<Duration> {
        let Trigger::Schedule { every_seconds, .. } = job.trigger else { return None };
        let period =
            self.intervals.get(job.name).copied().unwrap_or(Duration::from_secs(every_seconds));
        (!period.is_zero()).then_some(period)
    }
}

/// The running jobs.
pub struct JobRunner {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// One line per job: what runs and how often.
    pub summary: Vec<String>,
}

impl JobRunner {
    /// Stops every timer and consumer, waiting for runs in progress to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the configured jobs on the current runtime. The first scheduled run happens one
/// period after the start, like an EventBridge rate schedule's.
pub fn start(app: Arc<App>, cfg: &RunnerConfig) -> JobRunner {
    let (tx, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut summary = Vec::new();
    for &job in &cfg.jobs {
        match job.trigger {
            Trigger::Schedule { .. } => {
                let Some(period) = cfg.period(job) else {
                    summary.push(format!("{}: disabled", job.name));
                    continue;
                };
                summary.push(format!("{}: every {}", job.name, humanize(period)));
                tasks.push(tokio::spawn(schedule(app.clone(), job, period, rx.clone())));
            }
            Trigger::Queue { queue, .. } => {
                summary.push(format!("{}: consumes queue {queue}", job.name));
                let (backoff, idle) = (cfg.backoff, cfg.idle_poll);
                tasks.push(tokio::spawn(consume(app.clone(), job, backoff, idle, rx.clone())));
            }
            // Run by the operator (`local-emulator admin …`), never by the runner.
            Trigger::Manual { .. } => {}
            Trigger::Stream { .. } => {
                summary.push(format!("{}: on this process's new events and connections", job.name));
                tasks.push(tokio::spawn(follow(app.clone(), job, rx.clone())));
            }
        }
    }
    JobRunner { shutdown: tx, tasks, summary }
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 3600 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s >= 60 && s.is_multiple_of(60) => format!("{}min", s / 60),
        _ => format!("{:?}", d),
    }
}

async fn schedule(
    app: Arc<App>,
    job: &'static Job,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let Trigger::Schedule { run, .. } = job.trigger else { return };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let started = std::time::Instant::now();
        let result = run(app.clone(), app.clock.now()).await;
        app.metrics.observe_job(&JobRun::of(job.name, result.as_ref().ok(), started.elapsed()));
        match result {
            Ok(report) => tracing::debug!(job = job.name, %report, "job ran"),
            Err(e) => tracing::warn!(job = job.name, error = %e, "job failed"),
        }
    }
}

/// How long a failed stream job run waits before it is tried again.
const STREAM_RETRY: Duration = Duration::from_secs(1);

/// The emulator's stand-in for a table stream: runs the job with the organizations whose
/// events or connections this process wrote (`feed::Signal`), as soon as they are written.
/// (Events written by another process on the same AWS backend reach this emulator's sockets
/// with that organization's next change here: a DynamoDB stream would see them at once.)
async fn follow(app: Arc<App>, job: &'static Job, mut stop: watch::Receiver<bool>) {
    let Trigger::Stream { run, .. } = job.trigger else { return };
    let mut woken = app.feed_signal.subscribe();
    loop {
        let orgs = app.feed_signal.take_changed(job.name);
        if !orgs.is_empty() {
            let keys = orgs.iter().map(|org| stackhouse::service::feed::feed_pk(org)).collect();
            let started = std::time::Instant::now();
            let result = run(app.clone(), keys).await;
            app.metrics.observe_job(&JobRun::of(job.name, result.as_ref().ok(), started.elapsed()));
            if let Err(e) = result {
                tracing::warn!(job = job.name, error = %e, "job failed; retrying its organizations");
                for org in &orgs {
                    // (Every stream job sees them again: each is idempotent.)
                    app.feed_signal.connected(org);
                }
                tokio::time::sleep(STREAM_RETRY).await;
            }
            continue;
        }
        tokio::select! {
            woke = woken.changed() => if woke.is_err() { return },
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn consume(
    app: Arc<App>,
    job: &'static Job,
    backoff: Backoff,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut bell = match job.trigger {
        Trigger::Queue { queue, .. } => Some(crate::bells::listen(queue)),
        _ => None,
    };
    loop {
        if *stop.borrow() {
            return;
        }
        // Rings from here on wake the idle wait below, even those during the poll.
        if let Some(bell) = bell.as_mut() {
            bell.borrow_and_update();
        }
        let started = std::time::Instant::now();
        let busy = match poll_once(&app, job, &backoff).await {
            Ok(polled) => {
                if polled.received > 0 {
                    // One batch is one run, as one SQS invocation is on Lambda.
                    let counts = vec![
                        ("messages".to_string(), polled.received as u64),
                        ("batchItemFailures".to_string(), polled.failed as u64),
                    ];
                    let run =
                        JobRun { job: job.name, ok: true, elapsed: started.elapsed(), counts };
                    app.metrics.observe_job(&run);
                }
                polled.received > 0
            }
            Err(e) => {
                tracing::warn!(job = job.name, error = %e, "polling the queue failed");
                app.metrics.observe_job(&JobRun::of(job.name, None, started.elapsed()));
                false
            }
        };
        if !busy {
            let rung = async {
                match bell.as_mut() {
                    Some(bell) => {
                        let _ = bell.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = rung => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scheduled job added to the table gets a documented interval variable.
    #[test]
    fn every_interval_variable_is_documented() {
        for job in JOBS.iter().filter(|j| matches!(j.trigger, Trigger::Schedule { .. })) {
            let name = interval_env(job);
            assert!(stackhouse::config::lookup_var(&name).is_some(), "{name} not in config::VARS");
        }
    }
}
