//! Queue port, shaped like SQS standard queues with a dead-letter queue each.

use std::time::Duration;

use async_trait::async_trait;

/// Static description of a queue: its logical name and how many receives a message gets
/// before it is moved to the queue's dead-letter queue (named `<name>-dlq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Logical name, e.g. `jobs`. Adapters map it to a real queue.
    pub name: String,
    /// Receives after which an unacknowledged message is dead-lettered.
    pub max_receives: u32,
    /// Default visibility timeout of a received message.
    pub visibility_timeout: Duration,
}

impl QueueSpec {
    /// The logical name of this queue's dead-letter queue.
    pub fn dlq_name(&self) -> String {
        format!("{}-dlq", self.name)
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stable id of the message.
    pub id: String,
    /// Handle for `ack`/`extend`, valid for this receive only.
    pub receipt: String,
    /// The payload.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// Errors of the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No queue of that logical name is configured.
    #[error("unknown queue: {0}")]
    UnknownQueue(String),
    /// The body is empty or over the size limit (256 KiB).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The queue could not be reached or failed.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The function was built without this port: its route or job table entry does not declare
    /// it (see `adapters::undeclared`). A table bug, never a transient failure.
    #[error("{0}")]
    Undeclared(String),
}

/// Largest message body, as on SQS.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The queue service. Delivery is at least once: handlers must be idempotent.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues a message, visible after `delay` (at most 15 minutes).
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> Result<String, QueueError>;
    /// Receives up to `max` (1..=10) visible messages, hiding each for `visibility`. A message
    /// received more than its queue's `max_receives` times goes to the dead-letter queue
    /// instead of being returned.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError>;
    /// Acknowledges (deletes) a received message. Acknowledging twice succeeds.
    async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError>;
    /// Changes how long a received message stays hidden (0 = visible again now).
    async fn set_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError>;
    /// How many messages the queue holds (SQS counts approximately); reads nothing else.
    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError>;
}

/// A queue's messages by state (SQS's `ApproximateNumberOfMessages*` attributes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and hidden, not acknowledged yet.
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet.
    pub delayed: u64,
}

/// The queues Stackhouse uses unless configured otherwise: a `jobs` queue whose messages are
/// dead-lettered after five receives, hidden for 30 s per receive, a `webhooks` queue of
/// webhook deliveries, dead-lettered after eight attempts (about 45 minutes of retries with the
/// default backoff), hidden for 60 s per receive (longer than a delivery batch may take), and a
/// `materialise` queue of snapshot requests of long journal-mode updates, dead-lettered after
/// five receives, hidden for 180 s per receive (a replay of a large stack may take a while).
pub fn default_queues() -> Vec<QueueSpec> {
    vec![
        QueueSpec {
            name: "jobs".to_string(),
            max_receives: 5,
            visibility_timeout: Duration::from_secs(30),
        },
        QueueSpec {
            name: WEBHOOKS_QUEUE.to_string(),
            max_receives: 8,
            visibility_timeout: Duration::from_secs(60),
        },
        QueueSpec {
            name: MATERIALISE_QUEUE.to_string(),
            max_receives: 5,
            visibility_timeout: Duration::from_secs(180),
        },
        QueueSpec {
            name: DEPLOYMENTS_QUEUE.to_string(),
            max_receives: 5,
            visibility_timeout: Duration::from_secs(60),
        },
    ]
}

/// Logical name of the queue of deployment runs to start (`job-deployment-start`).
pub const DEPLOYMENTS_QUEUE: &str = "deployments";

/// Logical name of the queue of webhook deliveries.
pub const WEBHOOKS_QUEUE: &str = "webhooks";

/// Logical name of the queue of materialise requests (`job-update-materialise`).
pub const MATERIALISE_QUEUE: &str = "materialise";
