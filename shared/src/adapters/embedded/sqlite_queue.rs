//! [`Queue`] on SQLite, with SQS standard-queue semantics: delays, visibility timeouts,
//! receipts valid for one receive, receive counts and a dead-letter queue per queue.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection};

use super::group_commit::GroupWriter;
use super::now_ms;
use crate::adapters::AdapterError;
use crate::ports::queue::{Message, Queue, QueueDepth, QueueError, QueueSpec, MAX_MESSAGE_BYTES};

/// SQS limits, enforced so the embedded backend rejects what SQS would reject.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
const MAX_BATCH: usize = 10;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT UNIQUE,
    sent_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, seq);
";

/// The embedded queue service: every queue's messages in one SQLite table.
///
/// Only the configured queues and their `<name>-dlq` dead-letter queues exist. Dead-letter
/// queues have no dead-letter queue of their own: their messages are received indefinitely.
pub struct SqliteQueue {
    /// Every call, reads included, goes through one connection on the writer's thread.
    writer: GroupWriter,
    /// Logical name → receives before dead-lettering (None for a dead-letter queue).
    queues: Arc<HashMap<String, Option<u32>>>,
}

impl SqliteQueue {
    /// Opens (creating when needed) the queue database at `path`, serving `specs`.
    pub fn open(path: &Path, specs: &[QueueSpec]) -> Result<Self, AdapterError> {
        let conn = super::sqlite::open(path, SCHEMA)?;
        let mut queues = HashMap::new();
        for spec in specs {
            if spec.max_receives == 0 {
                return Err(AdapterError::new(
                    "queue",
                    format!("queue {}: max_receives must be at least 1", spec.name),
                ));
            }
            queues.insert(spec.name.clone(), Some(spec.max_receives));
            queues.insert(spec.dlq_name(), None);
        }
        Ok(SqliteQueue { writer: GroupWriter::spawn(conn, "queue")?, queues: Arc::new(queues) })
    }

    /// The queue's dead-letter limit, or UnknownQueue.
    fn spec(&self, queue: &str) -> Result<Option<u32>, QueueError> {
        self.queues.get(queue).copied().ok_or_else(|| QueueError::UnknownQueue(queue.to_string()))
    }

    /// Runs `f` in the writer's next group (its own savepoint of an IMMEDIATE transaction:
    /// SQLite's write lock is taken up front, so a receive's pick-and-hide is atomic against
    /// other tasks and processes); Ok once the group committed.
    async fn write<T, F>(&self, f: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, QueueError> + Send + 'static,
    {
        self.writer.write(f, QueueError::Unavailable).await
    }
}

fn db(e: rusqlite::Error) -> QueueError {
    QueueError::Unavailable(format!("sqlite: {e}"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Characters SQS accepts in a message body (the XML 1.0 character set).
fn sqs_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> Result<String, QueueError> {
        self.spec(queue)?;
        if body.is_empty() || body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::InvalidMessage(format!(
                "body of {} bytes (must be 1 to {MAX_MESSAGE_BYTES})",
                body.len()
            )));
        }
        if !body.chars().all(sqs_char) {
            return Err(QueueError::InvalidMessage("body holds characters SQS rejects".into()));
        }
        if delay > MAX_DELAY {
            return Err(QueueError::InvalidMessage(format!("delay {delay:?} is over 15 minutes")));
        }
        let (queue, body) = (queue.to_string(), body.to_string());
        let id = random_token();
        let out = id.clone();
        self.write(move |tx| {
            let now = now_ms();
            tx.execute(
                "INSERT INTO messages (id, queue, body, visible_at_ms, receive_count, sent_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![id, queue, body, now.saturating_add(millis(delay)), now],
            )
            .map_err(db)?;
            Ok(())
        })
        .await?;
        Ok(out)
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let max_receives = self.spec(queue)?;
        if !(1..=MAX_BATCH).contains(&max) {
            return Err(QueueError::InvalidMessage(format!(
                "receive at most 1 to {MAX_BATCH} messages, not {max}"
            )));
        }
        if visibility > MAX_VISIBILITY {
            return Err(QueueError::InvalidMessage(format!(
                "visibility timeout {visibility:?} is over 12 hours"
            )));
        }
        let queue = queue.to_string();
        let dlq = format!("{queue}-dlq");
        self.write(move |tx| {
            let now = now_ms();
            let hidden_until = now.saturating_add(millis(visibility));
            let mut out = Vec::new();
            // Walk visible messages in send order; dead-lettered ones do not count towards
            // `max`, so keep fetching until the batch is full or the queue has no more.
            let mut cursor = 0i64;
            while out.len() < max {
                let batch: Vec<(i64, String, String, u32)> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT seq, id, body, receive_count FROM messages
                             WHERE queue = ?1 AND visible_at_ms <= ?2 AND seq > ?3
                             ORDER BY seq LIMIT ?4",
                        )
                        .map_err(db)?;
                    let rows = stmt
                        .query_map(params![queue, now, cursor, (max - out.len()) as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .map_err(db)?;
                    rows.collect::<Result<_, _>>().map_err(db)?
                };
                if batch.is_empty() {
                    break;
                }
                for (seq, id, body, count) in batch {
                    cursor = seq;
                    let count = count.saturating_add(1);
                    if max_receives.is_some_and(|limit| count > limit) {
                        // SQS moves the message on the receive that would exceed the limit;
                        // in the DLQ its count starts over.
                        tx.execute(
                            "UPDATE messages SET queue = ?1, receive_count = 0, receipt = NULL,
                               visible_at_ms = ?2 WHERE seq = ?3",
                            params![dlq, now, seq],
                        )
                        .map_err(db)?;
                        continue;
                    }
                    let receipt = random_token();
                    tx.execute(
                        "UPDATE messages SET receive_count = ?1, receipt = ?2, visible_at_ms = ?3
                         WHERE seq = ?4",
                        params![count, receipt, hidden_until, seq],
                    )
                    .map_err(db)?;
                    out.push(Message { id, receipt, body, receive_count: count });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        self.spec(queue)?;
        let (queue, receipt) = (queue.to_string(), receipt.to_string());
        // A stale or unknown receipt matches nothing: acknowledging twice succeeds.
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM messages WHERE queue = ?1 AND receipt = ?2",
                params![queue, receipt],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn set_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        self.spec(queue)?;
        if visibility > MAX_VISIBILITY {
            return Err(QueueError::InvalidMessage(format!(
                "visibility timeout {visibility:?} is over 12 hours"
            )));
        }
        let (queue, receipt) = (queue.to_string(), receipt.to_string());
        self.write(move |tx| {
            let now = now_ms();
            // Only an in-flight message can be re-hidden (SQS: MessageNotInflight); one whose
            // visibility already ran out is left for the next receiver, silently.
            tx.execute(
                "UPDATE messages SET visible_at_ms = ?1
                 WHERE queue = ?2 AND receipt = ?3 AND visible_at_ms > ?4",
                params![now.saturating_add(millis(visibility)), queue, receipt, now],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        self.spec(queue)?;
        let queue = queue.to_string();
        // A read, but through the writer: one connection serves both.
        self.write(move |tx| {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            tx.query_row(
                "SELECT
                   COALESCE(SUM(visible_at_ms <= ?2), 0),
                   COALESCE(SUM(visible_at_ms > ?2 AND receive_count > 0), 0),
                   COALESCE(SUM(visible_at_ms > ?2 AND receive_count = 0), 0)
                 FROM messages WHERE queue = ?1",
                params![queue, now_ms()],
                |row| {
                    Ok(QueueDepth {
                        visible: count(row.get(0)?),
                        in_flight: count(row.get(1)?),
                        delayed: count(row.get(2)?),
                    })
                },
            )
            .map_err(db)
        })
        .await
    }
}
