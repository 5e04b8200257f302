//! The generic queue consumer and dead-letter queue tools, the same for Lambda and the
//! emulator.
//!
//! A batch goes through the job's handler; successes are acknowledged (by Lambda itself for an
//! SQS event source with `ReportBatchItemFailures`, by [`poll_once`] in the emulator); each
//! failure is hidden for a backoff that doubles with its receive count ([`retry_delay`]), so
//! retries back off through the visibility timeout, and after its queue's `max_receives` the
//! queue moves it to the dead-letter queue `<name>-dlq`, where [`dlq_list`] shows it and
//! [`dlq_redrive`] sends it back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{BatchFn, Job, Trigger};
use crate::app::App;
use crate::ports::queue::{default_queues, Message, Queue, QueueError, QueueSpec};

/// How failed messages are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Hidden this long after the first failed receive.
    pub base: Duration,
    /// Never hidden longer than this.
    pub max: Duration,
}

impl Default for Backoff {
    /// 30 s, 1 min, 2 min, 4 min, … up to 15 min.
    fn default() -> Self {
        Backoff { base: Duration::from_secs(30), max: Duration::from_secs(15 * 60) }
    }
}

/// How long a message that failed on its `receive_count`-th receive stays hidden:
/// `base · 2^(receive_count − 1)`, at most `max`.
pub fn retry_delay(backoff: &Backoff, receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(20);
    backoff.base.saturating_mul(1u32 << doublings).min(backoff.max)
}

/// The configured queue of that logical name.
pub fn queue_spec(name: &str) -> Result<QueueSpec, QueueError> {
    default_queues()
        .into_iter()
        .find(|q| q.name == name)
        .ok_or_else(|| QueueError::UnknownQueue(name.to_string()))
}

/// Runs a batch through `run` and returns the ids of the messages that failed, each hidden for
/// its [`retry_delay`]. Ids the handler reports that are not in the batch are ignored.
pub async fn run_batch(
    app: &Arc<App>,
    queue: &str,
    run: BatchFn,
    messages: Vec<Message>,
    backoff: &Backoff,
) -> Vec<String> {
    let receipts: Vec<(String, String, u32)> =
        messages.iter().map(|m| (m.id.clone(), m.receipt.clone(), m.receive_count)).collect();
    let reported: HashSet<String> = run(app.clone(), messages).await.into_iter().collect();
    let mut failed = Vec::new();
    for (id, receipt, count) in receipts {
        if !reported.contains(&id) {
            continue;
        }
        let delay = retry_delay(backoff, count);
        if let Err(e) = app.ports.queue.set_visibility(queue, &receipt, delay).await {
            // The queue's own visibility timeout applies instead.
            tracing::warn!(queue, message = %id, error = %e, "could not delay a failed message");
        }
        failed.push(id);
    }
    failed
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    /// Messages received.
    pub received: usize,
    /// Messages the handler failed (left for a retry or the dead-letter queue).
    pub failed: usize,
}

/// Receives one batch of the job's queue (short poll), runs it and acknowledges the successes:
/// the emulator's consumer, and what Lambda's SQS event source does around [`run_batch`].
pub async fn poll_once(app: &Arc<App>, job: &Job, backoff: &Backoff) -> Result<Polled, QueueError> {
    let Trigger::Queue { queue, batch_size, run } = job.trigger else {
        return Err(QueueError::UnknownQueue(format!("{} is not a queue job", job.name)));
    };
    let spec = queue_spec(queue)?;
    let messages =
        app.ports.queue.receive(queue, batch_size.clamp(1, 10), spec.visibility_timeout).await?;
    if messages.is_empty() {
        return Ok(Polled::default());
    }
    let received = messages.len();
    let receipts: Vec<(String, String)> =
        messages.iter().map(|m| (m.id.clone(), m.receipt.clone())).collect();
    let failed: HashSet<String> =
        run_batch(app, queue, run, messages, backoff).await.into_iter().collect();
    for (id, receipt) in &receipts {
        if failed.contains(id) {
            continue;
        }
        if let Err(e) = app.ports.queue.ack(queue, receipt).await {
            // Redelivered later; handlers are idempotent.
            tracing::warn!(queue, message = %id, error = %e, "could not acknowledge a message");
        }
    }
    Ok(Polled { received, failed: failed.len() })
}

/// How long [`dlq_list`] and [`dlq_redrive`] hide what they received while they work.
const DLQ_HOLD: Duration = Duration::from_secs(60);

/// Up to `max` messages of the dead-letter queue of `queue`, left in it (each is received
/// once, which SQS counts, and made visible again at once).
pub async fn dlq_list(q: &dyn Queue, queue: &str, max: usize) -> Result<Vec<Message>, QueueError> {
    let dlq = queue_spec(queue)?.dlq_name();
    let mut out: Vec<Message> = Vec::new();
    while out.len() < max {
        let batch = q.receive(&dlq, (max - out.len()).min(10), DLQ_HOLD).await?;
        if batch.is_empty() {
            break;
        }
        out.extend(batch);
    }
    for m in &out {
        q.set_visibility(&dlq, &m.receipt, Duration::ZERO).await?;
    }
    Ok(out)
}

/// Moves up to `max` messages from the dead-letter queue of `queue` back to `queue` (as new
/// messages: their receive counts start over). Returns how many moved.
pub async fn dlq_redrive(q: &dyn Queue, queue: &str, max: usize) -> Result<usize, QueueError> {
    let dlq = queue_spec(queue)?.dlq_name();
    let mut moved = 0;
    while moved < max {
        let batch = q.receive(&dlq, (max - moved).min(10), DLQ_HOLD).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            // Send first: a crash in between leaves a duplicate, never a lost message.
            q.send(queue, &m.body, Duration::ZERO).await?;
            q.ack(&dlq, &m.receipt).await?;
            moved += 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let b = Backoff::default();
        let secs = |n| retry_delay(&b, n).as_secs();
        assert_eq!([secs(0), secs(1), secs(2), secs(3), secs(4)], [30, 30, 60, 120, 240]);
        assert_eq!(secs(6), 900);
        assert_eq!(secs(u32::MAX), 900);
        let none = Backoff { base: Duration::ZERO, max: Duration::ZERO };
        assert_eq!(retry_delay(&none, 3), Duration::ZERO);
    }
}
