//! [`Queue`] on SQS standard queues. Logical queue `jobs` is the SQS queue
//! `<prefix>jobs`; dead-lettering after `max_receives` is SQS's own redrive policy, which
//! `provision` sets, so nothing here counts receives.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_sdk_sqs::Client;
use tokio::sync::RwLock;

use super::readable;
use crate::ports::queue::{Message, Queue, QueueDepth, QueueError, MAX_MESSAGE_BYTES};

/// SQS's longest send delay.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// The SQS queue service.
#[derive(Debug)]
pub struct SqsQueue {
    client: Client,
    prefix: String,
    /// Logical name → queue URL. URLs never change for a queue's lifetime, so caching them
    /// saves one GetQueueUrl per call; an entry is dropped when SQS says the queue is gone.
    urls: RwLock<HashMap<String, String>>,
}

impl SqsQueue {
    /// A queue service where logical queue `name` is the SQS queue `<prefix><name>`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        SqsQueue { client, prefix: prefix.into(), urls: RwLock::new(HashMap::new()) }
    }

    async fn url(&self, queue: &str) -> Result<String, QueueError> {
        if let Some(url) = self.urls.read().await.get(queue) {
            return Ok(url.clone());
        }
        let name = format!("{}{}", self.prefix, queue);
        let out = match self.client.get_queue_url().queue_name(&name).send().await {
            Ok(out) => out,
            Err(e) => {
                return Err(match e.into_service_error() {
                    GetQueueUrlError::QueueDoesNotExist(_) => {
                        QueueError::UnknownQueue(queue.to_string())
                    }
                    other => unavailable(other),
                })
            }
        };
        let url = out
            .queue_url()
            .ok_or_else(|| QueueError::Unavailable(format!("no URL returned for queue {name}")))?
            .to_string();
        self.urls.write().await.insert(queue.to_string(), url.clone());
        Ok(url)
    }

    /// Maps an operation's error, forgetting the cached URL if the queue no longer exists.
    async fn fail<E>(&self, queue: &str, err: E) -> QueueError
    where
        E: std::error::Error + ProvideErrorMetadata,
    {
        let gone = matches!(
            err.code(),
            Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
        );
        if gone {
            self.urls.write().await.remove(queue);
            QueueError::UnknownQueue(queue.to_string())
        } else {
            unavailable(err)
        }
    }
}

fn unavailable<E: std::error::Error>(err: E) -> QueueError {
    QueueError::Unavailable(readable(&err))
}

/// Whole seconds, rounded up so that nothing becomes visible earlier than asked.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A visibility timeout in SQS's whole seconds, refusing what SQS would refuse.
fn visibility_secs(visibility: Duration) -> Result<i32, QueueError> {
    if visibility > MAX_VISIBILITY {
        return Err(QueueError::InvalidMessage(format!(
            "visibility timeout {visibility:?} is over 12 hours"
        )));
    }
    // At most 43 200 here, so the conversion cannot fail.
    Ok(i32::try_from(ceil_secs(visibility)).unwrap_or(i32::MAX))
}

/// SQS accepts only these characters (XML 1.0's); checking here gives `InvalidMessage`
/// instead of an opaque service error.
fn sqs_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> Result<String, QueueError> {
        if body.is_empty() {
            return Err(QueueError::InvalidMessage("empty body".to_string()));
        }
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::InvalidMessage(format!(
                "body of {} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                body.len()
            )));
        }
        if let Some(c) = body.chars().find(|c| !sqs_char(*c)) {
            return Err(QueueError::InvalidMessage(format!(
                "body contains character U+{:04X}, which SQS does not accept",
                u32::from(c)
            )));
        }
        if delay > MAX_DELAY {
            return Err(QueueError::InvalidMessage(format!(
                "delay {delay:?} is over the 15-minute limit"
            )));
        }
        let url = self.url(queue).await?;
        // ceil(delay) ≤ 900 here, so the conversion cannot fail.
        let delay_secs = i32::try_from(ceil_secs(delay)).unwrap_or(900);
        let result = self
            .client
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .delay_seconds(delay_secs)
            .send()
            .await;
        match result {
            Ok(out) => out
                .message_id()
                .map(str::to_string)
                .ok_or_else(|| QueueError::Unavailable("no message id returned".to_string())),
            Err(e) => Err(self.fail(queue, e.into_service_error()).await),
        }
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        // Same answer as the embedded queue: SQS itself rejects counts outside 1..=10.
        if !(1..=10).contains(&max) {
            return Err(QueueError::InvalidMessage(format!(
                "receive max must be 1..=10, not {max}"
            )));
        }
        let url = self.url(queue).await?;
        let max = i32::try_from(max).unwrap_or(10);
        let visibility = visibility_secs(visibility)?;
        let result = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(max)
            .visibility_timeout(visibility)
            // Short poll: callers decide how to wait; a Lambda trigger never calls this.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => return Err(self.fail(queue, e.into_service_error()).await),
        };
        let mut messages = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let missing = |what: &str| QueueError::Unavailable(format!("message without {what}"));
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| missing("a valid ApproximateReceiveCount"))?;
            messages.push(Message {
                id: m.message_id().ok_or_else(|| missing("an id"))?.to_string(),
                receipt: m.receipt_handle().ok_or_else(|| missing("a receipt handle"))?.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count,
            });
        }
        Ok(messages)
    }

    async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        let url = self.url(queue).await?;
        match self.client.delete_message().queue_url(&url).receipt_handle(receipt).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                // Acknowledging is idempotent by contract. SQS accepts a second delete of the
                // same receipt, but answers ReceiptHandleIsInvalid when the message has left
                // the queue another way (e.g. dead-lettered meanwhile): it is gone either way.
                DeleteMessageError::ReceiptHandleIsInvalid(err) => {
                    tracing::warn!(queue, error = %readable(&err), "ack of an unknown receipt");
                    Ok(())
                }
                other => Err(self.fail(queue, other).await),
            },
        }
    }

    async fn set_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let visibility = visibility_secs(visibility)?;
        let url = self.url(queue).await?;
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                // The message is no longer in flight under this receipt (its visibility ran
                // out, or it was acknowledged): it is left for the next receiver, as the
                // embedded queue does.
                ChangeMessageVisibilityError::MessageNotInflight(_)
                | ChangeMessageVisibilityError::ReceiptHandleIsInvalid(_) => Ok(()),
                other => Err(self.fail(queue, other).await),
            },
        }
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = self.url(queue).await?;
        let out = match self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => return Err(self.fail(queue, e.into_service_error()).await),
        };
        let attributes = out.attributes();
        let count = |name: A| {
            attributes.and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: count(A::ApproximateNumberOfMessages),
            in_flight: count(A::ApproximateNumberOfMessagesNotVisible),
            delayed: count(A::ApproximateNumberOfMessagesDelayed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_durations_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(30)), 30);
    }

    #[test]
    fn accepts_only_sqs_characters() {
        assert!("héllo\n\t{}\u{1F600}".chars().all(sqs_char));
        assert!(!sqs_char('\u{0}'));
        assert!(!sqs_char('\u{FFFF}'));
    }
}
