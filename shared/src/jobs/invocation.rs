//! The Lambda events that trigger jobs, and the one function that runs a job on one: used by
//! the function binaries (`stackhouse_lambda::run_job` (the `functions` crate)) and by the tests of `events/`.
//!
//! The shapes are the documented ones (EventBridge scheduled events; SQS events with
//! `ReportBatchItemFailures`), reduced to the fields a job uses. `aws_lambda_events` has them
//! too, but its `sqs` and `eventbridge` features pull `serde_with` and `chrono` into every
//! function binary for five fields.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::consumer::{run_batch, Backoff};
use super::{Job, Json, Trigger};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::Message;

/// An EventBridge scheduled event (`"detail-type": "Scheduled Event"`). Every field is
/// optional: a manual invocation with `{}` runs the job too.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ScheduledEvent {
    /// Event id.
    #[serde(default)]
    pub id: Option<String>,
    /// `Scheduled Event`.
    #[serde(default, rename = "detail-type")]
    pub detail_type: Option<String>,
    /// `aws.events` (or `aws.scheduler`).
    #[serde(default)]
    pub source: Option<String>,
    /// When the schedule fired (RFC 3339); the job uses its own clock.
    #[serde(default)]
    pub time: Option<String>,
    /// The rule's ARN.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// An SQS event: a batch of records of one queue.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SqsEvent {
    /// The messages.
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

/// One SQS message as Lambda delivers it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    /// Message id: what a partial batch response names.
    pub message_id: String,
    /// Receipt handle (for changing the message's visibility).
    pub receipt_handle: String,
    /// The payload.
    #[serde(default)]
    pub body: String,
    /// System attributes, e.g. `ApproximateReceiveCount`.
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    /// The queue's ARN.
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: Option<String>,
}

impl SqsRecord {
    /// The record as a port message.
    pub fn to_message(&self) -> Message {
        Message {
            id: self.message_id.clone(),
            receipt: self.receipt_handle.clone(),
            body: self.body.clone(),
            receive_count: self
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        }
    }
}

/// A DynamoDB stream event: a batch of changes to the table, reduced to what a stream job
/// reads (which kind of change, and the item's keys).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamEvent {
    /// The changes.
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

/// One change of a DynamoDB stream.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(default)]
    pub event_name: String,
    /// The change itself.
    #[serde(default)]
    pub dynamodb: StreamChange,
}

/// The item's keys in a stream record, in DynamoDB's typed JSON (`{"pk": {"S": "…"}}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamChange {
    /// `pk` and `sk`.
    #[serde(rename = "Keys", default)]
    pub keys: HashMap<String, HashMap<String, String>>,
}

impl StreamRecord {
    fn key(&self, name: &str) -> Option<&str> {
        self.dynamodb.keys.get(name).and_then(|v| v.get("S")).map(String::as_str)
    }

    /// The partition key of an inserted item whose keys match one of `inserts`.
    pub fn inserted_pk(&self, inserts: &[(&str, &str)]) -> Option<String> {
        let (pk, sk) = (self.key("pk")?, self.key("sk")?);
        let matches = inserts.iter().any(|(p, s)| pk.starts_with(p) && sk.starts_with(s));
        (self.event_name == "INSERT" && matches).then(|| pk.to_string())
    }
}

/// The partial batch response of an SQS-triggered function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    /// The messages to retry.
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One failed message of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// Its message id.
    pub item_identifier: String,
}

/// Runs `job` on one Lambda event payload: a scheduled job at the app's current time (its
/// report is the response), a queue job on the event's records (the response is the partial
/// batch response), a manual job on the payload as given.
pub async fn handle(app: &Arc<App>, job: &Job, payload: Json) -> Result<Json> {
    match job.trigger {
        Trigger::Schedule { run, .. } => {
            let event: ScheduledEvent = serde_json::from_value(payload)
                .map_err(|e| Error::BadRequest(format!("not a scheduled event: {e}")))?;
            tracing::debug!(job = job.name, event = ?event.id, time = ?event.time, "scheduled run");
            run(app.clone(), app.clock.now()).await
        }
        Trigger::Queue { queue, run, .. } => {
            let event: SqsEvent = serde_json::from_value(payload)
                .map_err(|e| Error::BadRequest(format!("not an SQS event: {e}")))?;
            let messages = event.records.iter().map(SqsRecord::to_message).collect();
            let failed = run_batch(app, queue, run, messages, &Backoff::default()).await;
            let response = SqsBatchResponse {
                batch_item_failures: failed
                    .into_iter()
                    .map(|item_identifier| BatchItemFailure { item_identifier })
                    .collect(),
            };
            serde_json::to_value(response).map_err(|e| Error::caused("JSON encoding", e))
        }
        // The payload is the request itself (`aws lambda invoke --payload …`).
        Trigger::Manual { run } => run(app.clone(), payload).await,
        // Records the event source's filter let through; filtered again here so that a
        // template without the filter still triggers nothing else.
        Trigger::Stream { inserts, run, .. } => {
            let event: StreamEvent = serde_json::from_value(payload)
                .map_err(|e| Error::BadRequest(format!("not a DynamoDB stream event: {e}")))?;
            let keys = event.records.iter().filter_map(|r| r.inserted_pk(inserts)).collect();
            run(app.clone(), keys).await
        }
    }
}
