//! The job table: every background job (docs/ARCHITECTURE.md, The route table; Background
//! jobs). Lambda binaries, the emulator's timers and consumers, the SAM template and the sample
//! events all come from it.
//!
//! Each job is its own `static` so that a function binary referring to one job links only that
//! job's handler.

use super::{Job, Trigger};
use crate::ports::queue::{DEPLOYMENTS_QUEUE, MATERIALISE_QUEUE, WEBHOOKS_QUEUE};
use crate::ports::Needs;
use crate::{batch, manual, scheduled, stream};

/// `job-lease-reaper`: every minute, ends updates whose lease lapsed as failed, keeping their
/// last acknowledged state, and frees their stacks.
pub static JOB_LEASE_REAPER: Job = Job {
    name: "job-lease-reaper",
    description: "Ends updates whose lease expired (CLI killed) and frees their stacks",
    trigger: Trigger::Schedule { every_seconds: 60, run: scheduled!(super::lease_reaper) },
    // Queue: reaped updates queue their webhook deliveries.
    needs: Needs::META_BLOB_WRITE_EVENTS,
    timeout_seconds: 120,
};

/// `job-history-retention`: hourly, prunes stack history by the configured policy and removes
/// orphaned and expired scratch blobs.
pub static JOB_HISTORY_RETENTION: Job = Job {
    name: "job-history-retention",
    description: "Prunes stack history by policy and removes orphaned blobs",
    trigger: Trigger::Schedule { every_seconds: 3600, run: scheduled!(super::history_retention) },
    needs: Needs::META_BLOB_WRITE,
    timeout_seconds: 600,
};

/// `job-webhook-deliver`: posts webhook deliveries from the `webhooks` queue, signed, with a
/// 10 s timeout; failures retry with backoff and end in the dead-letter queue.
pub static JOB_WEBHOOK_DELIVER: Job = Job {
    name: "job-webhook-deliver",
    description: "Posts webhook deliveries (signed, 10 s timeout, retried with backoff)",
    trigger: Trigger::Queue {
        queue: WEBHOOKS_QUEUE,
        batch_size: 5,
        run: batch!(super::webhook_deliver),
    },
    needs: Needs::META_WRITE_KEYS_READ.consuming(),
    timeout_seconds: 60,
};

/// `job-admin-create-user`: invoked by hand with `{"name","org","role"}`, creates the user
/// and returns a new personal access token: the first token of a deployed stack.
pub static JOB_ADMIN_CREATE_USER: Job = Job {
    name: "job-admin-create-user",
    description: "Creates a user with a role in an organization and returns an access token",
    trigger: Trigger::Manual { run: manual!(super::admin_create_user) },
    needs: Needs::META_WRITE,
    timeout_seconds: 30,
};

/// `job-update-materialise`: writes a resumable snapshot of a long journal-mode update when
/// its journal crossed the configured number of entries, so that completing, cancelling or
/// reaping it replays only the tail.
pub static JOB_UPDATE_MATERIALISE: Job = Job {
    name: "job-update-materialise",
    description: "Snapshots long journal-mode updates so their final replay is short",
    trigger: Trigger::Queue {
        queue: MATERIALISE_QUEUE,
        // One replay per invocation bounds its time and memory; updates run in parallel.
        batch_size: 1,
        run: batch!(super::update_materialise),
    },
    needs: Needs::META_BLOB_WRITE.consuming(),
    timeout_seconds: 120,
};

/// `job-feed-fanout`: on each new event and each new WebSocket connection (the table's
/// stream), sends the organization's connections what they are owed, in order.
pub static JOB_FEED_FANOUT: Job = Job {
    name: "job-feed-fanout",
    description: "Sends new events to the event stream's WebSocket clients, in order, once",
    trigger: Trigger::Stream {
        inserts: &[("FEED#", "E#"), ("WS#", "C#")],
        batch_size: 100,
        run: stream!(super::feed_fanout),
    },
    needs: Needs::META_WRITE.pushing(),
    timeout_seconds: 60,
};

/// `job-artifact-gc`: hourly, removes stored artifacts (policy pack archives) nothing has
/// referred to for the grace period, and uploads never completed.
pub static JOB_ARTIFACT_GC: Job = Job {
    name: "job-artifact-gc",
    description: "Removes unreferenced artifacts and abandoned uploads after the grace period",
    trigger: Trigger::Schedule { every_seconds: 3600, run: scheduled!(super::artifact_gc) },
    needs: Needs::META_BLOB_WRITE,
    timeout_seconds: 600,
};

/// `job-search-index`: on each new event, brings the organization's search index up to date.
pub static JOB_SEARCH_INDEX: Job = Job {
    name: "job-search-index",
    description: "Brings the resource search index of each organization with new events up to date with its stacks",
    trigger: Trigger::Stream {
        inserts: &[("FEED#", "E#")],
        batch_size: 100,
        run: stream!(super::search_index),
    },
    needs: Needs::META_BLOB_WRITE,
    timeout_seconds: 300,
};

pub static JOB_SEARCH_REINDEX: Job = Job {
    name: "job-search-reindex",
    description: "Rebuilds an organization's resource search index from all its stacks",
    trigger: Trigger::Manual { run: manual!(super::search_reindex) },
    needs: Needs::META_BLOB_WRITE,
    timeout_seconds: 900,
};

/// `job-deployment-start`: takes each queued deployment run, waits for its stack's slot, mints
/// its token and has the launcher start its runner.
pub static JOB_DEPLOYMENT_START: Job = Job {
    name: "job-deployment-start",
    description: "Starts the runner of each queued deployment, one run per stack at a time",
    trigger: Trigger::Queue {
        queue: DEPLOYMENTS_QUEUE,
        batch_size: 5,
        run: batch!(super::deployment_start),
    },
    // Queue: a run whose stack is busy is sent back with a delay. Launch: the runner's build.
    needs: Needs::META_WRITE_EVENTS.launching(),
    timeout_seconds: 60,
};

/// `job-deployment-reaper`: every minute, fails deployment runs whose runner stopped
/// reporting, and queues again waiting runs that lost their message.
pub static JOB_DEPLOYMENT_REAPER: Job = Job {
    name: "job-deployment-reaper",
    description: "Fails deployment runs whose runner stopped reporting; requeues lost ones",
    trigger: Trigger::Schedule { every_seconds: 60, run: scheduled!(super::deployment_reaper) },
    needs: Needs::META_WRITE_EVENTS,
    timeout_seconds: 120,
};

/// `job-deployment-scheduler`: every minute, makes the due windows of deployment schedules
/// (cron, once, drift, TTL) into runs, catching up after downtime, never twice per window.
pub static JOB_DEPLOYMENT_SCHEDULER: Job = Job {
    name: "job-deployment-scheduler",
    description: "Makes the due windows of deployment schedules into runs, each window once",
    trigger: Trigger::Schedule { every_seconds: 60, run: scheduled!(super::deployment_scheduler) },
    // Keys: a run's settings are sealed for its stack; queue: runs are sent to start.
    needs: Needs::META_WRITE_KEYS_EVENTS,
    timeout_seconds: 120,
};

/// Every job.
pub static JOBS: &[&Job] = &[
    &JOB_LEASE_REAPER,
    &JOB_HISTORY_RETENTION,
    &JOB_ARTIFACT_GC,
    &JOB_WEBHOOK_DELIVER,
    &JOB_UPDATE_MATERIALISE,
    &JOB_DEPLOYMENT_START,
    &JOB_DEPLOYMENT_REAPER,
    &JOB_DEPLOYMENT_SCHEDULER,
    &JOB_ADMIN_CREATE_USER,
    &JOB_FEED_FANOUT,
    &JOB_SEARCH_INDEX,
    &JOB_SEARCH_REINDEX,
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::api::routes::ROUTES;
    use crate::ports::queue::default_queues;
    use crate::ports::Access;

    #[test]
    fn names_are_unique_prefixed_and_distinct_from_routes() {
        let names: HashSet<_> = JOBS.iter().map(|j| j.name).collect();
        assert_eq!(names.len(), JOBS.len());
        for job in JOBS {
            assert!(job.name.starts_with("job-"), "{}", job.name);
            assert!(ROUTES.iter().all(|r| r.name != job.name), "{}", job.name);
            assert!(job.timeout_seconds >= 1 && job.timeout_seconds <= 900, "{}", job.name);
        }
    }

    #[test]
    fn triggers_are_deployable() {
        for job in JOBS {
            match job.trigger {
                Trigger::Schedule { every_seconds, .. } => {
                    assert!(
                        every_seconds >= 60 && every_seconds.is_multiple_of(60),
                        "{}",
                        job.name
                    );
                }
                Trigger::Queue { queue, batch_size, .. } => {
                    let spec = default_queues().into_iter().find(|q| q.name == queue);
                    let spec = spec.unwrap_or_else(|| panic!("{}: no queue {queue}", job.name));
                    assert!((1..=10).contains(&batch_size), "{}", job.name);
                    // Lambda refuses an SQS trigger whose queue hides messages for less time
                    // than the function may run.
                    assert!(
                        u64::from(job.timeout_seconds) <= spec.visibility_timeout.as_secs(),
                        "{}",
                        job.name
                    );
                    assert!(job.needs.queue >= Access::Read, "{}", job.name);
                }
                Trigger::Manual { .. } => {}
                Trigger::Stream { inserts, batch_size, .. } => {
                    assert!((1..=10_000).contains(&batch_size), "{}", job.name);
                    assert!(!inserts.is_empty(), "{}", job.name);
                    // Never triggered by its own writes (the fan-out state, cursors): only by
                    // inserts of the items it names.
                    for (pk, sk) in inserts {
                        assert!(!pk.is_empty() && !sk.is_empty(), "{}", job.name);
                    }
                }
            }
        }
    }
}
