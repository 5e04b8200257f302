//! Counting wrappers around the four ports: every call is delegated unchanged to the wrapped
//! adapter and counted, so a benchmark can say exactly how many storage operations (and how
//! many billed DynamoDB capacity units, S3 requests, KMS and SQS calls) one Pulumi operation
//! costs on whichever backend runs underneath (docs/BENCHMARKS.md, "Storage operations").
//!
//! Counts are taken at the port, not inside the SDKs, so they are the same on the embedded and
//! the AWS backend and equal what DynamoDB, S3, KMS and SQS would bill for the same calls
//! (SDK retries aside). Capacity units are estimated from item sizes the way DynamoDB states
//! them: a write costs one unit per started KiB of the item (twice that inside a transaction),
//! a strongly consistent read one unit per started 4 KiB (a query: of the whole page), and
//! every call at least one unit. Conditional writes are billed on the new item here, while
//! DynamoDB bills the larger of old and new: a slight underestimate for items that shrink.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::ports::blob::ResponseHeaders;
use crate::ports::{
    BlobError, BlobList, BlobStore, Condition, DataKey, EncryptionContext, Item, KeyError,
    KeyService, Message, MetaError, MetadataStore, Page, Ports, Query, Queue, QueueDepth,
    QueueError, TransactOp, Update, Value,
};
use crate::ports::{Push, PushError};

/// The live counters shared by the four wrappers of one [`wrap`] call.
#[derive(Debug, Default)]
pub struct Counters {
    meta_gets: AtomicU64,
    meta_queries: AtomicU64,
    meta_query_items: AtomicU64,
    meta_puts: AtomicU64,
    meta_deletes: AtomicU64,
    meta_transactions: AtomicU64,
    meta_transaction_items: AtomicU64,
    meta_read_units: AtomicU64,
    meta_write_units: AtomicU64,
    meta_bytes_written: AtomicU64,
    blob_puts: AtomicU64,
    blob_gets: AtomicU64,
    blob_lists: AtomicU64,
    blob_deletes: AtomicU64,
    blob_presigns: AtomicU64,
    blob_bytes_put: AtomicU64,
    blob_bytes_got: AtomicU64,
    kms_calls: AtomicU64,
    push_calls: AtomicU64,
    queue_sends: AtomicU64,
    queue_receives: AtomicU64,
    queue_acks: AtomicU64,
}

/// A snapshot of [`Counters`]: plain numbers that can be subtracted (`after - before`) to get
/// the operations of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OpCounts {
    /// `MetadataStore::get` calls (DynamoDB `GetItem`).
    pub meta_gets: u64,
    /// `MetadataStore::query` calls (DynamoDB `Query`, one per page).
    pub meta_queries: u64,
    /// Items returned by those queries.
    pub meta_query_items: u64,
    /// `MetadataStore::put` calls (`PutItem`, conditional or not).
    pub meta_puts: u64,
    /// `MetadataStore::delete` calls (`DeleteItem`).
    pub meta_deletes: u64,
    /// `MetadataStore::transact` calls (`TransactWriteItems`).
    pub meta_transactions: u64,
    /// Operations inside those transactions.
    pub meta_transaction_items: u64,
    /// Estimated read capacity units (strongly consistent).
    pub meta_read_units: u64,
    /// Estimated write capacity units (transactions count double).
    pub meta_write_units: u64,
    /// Bytes of items written (puts and transaction puts), by DynamoDB's size rules.
    pub meta_bytes_written: u64,
    /// `BlobStore::put` and `put_if_absent` calls (S3 `PutObject`).
    pub blob_puts: u64,
    /// `BlobStore::get` calls (S3 `GetObject`).
    pub blob_gets: u64,
    /// `BlobStore::list` calls (S3 `ListObjectsV2`).
    pub blob_lists: u64,
    /// `BlobStore::delete` calls (S3 `DeleteObject`, free on S3).
    pub blob_deletes: u64,
    /// Presigned URLs made (no S3 request; signing is local).
    pub blob_presigns: u64,
    /// Bytes stored by blob puts.
    pub blob_bytes_put: u64,
    /// Bytes read by blob gets.
    pub blob_bytes_got: u64,
    /// `GenerateDataKey` plus `Decrypt` calls (KMS).
    pub kms_calls: u64,
    /// `Queue::send` calls (SQS `SendMessage`).
    pub queue_sends: u64,
    /// `Queue::receive` calls (SQS `ReceiveMessage`).
    pub queue_receives: u64,
    /// `Queue::ack` and `set_visibility` calls (SQS `DeleteMessage`, `ChangeMessageVisibility`).
    pub queue_acks: u64,
    /// Frames pushed to WebSocket clients and connections closed (API Gateway
    /// `PostToConnection`, `DeleteConnection`).
    pub push_calls: u64,
}

impl OpCounts {
    /// Every DynamoDB request (reads, writes and transactions).
    pub fn meta_requests(&self) -> u64 {
        self.meta_gets
            + self.meta_queries
            + self.meta_puts
            + self.meta_deletes
            + self.meta_transactions
    }
    /// Every SQS request.
    pub fn queue_requests(&self) -> u64 {
        self.queue_sends + self.queue_receives + self.queue_acks
    }
}

impl std::ops::Sub for OpCounts {
    type Output = OpCounts;
    fn sub(self, o: OpCounts) -> OpCounts {
        OpCounts {
            meta_gets: self.meta_gets.saturating_sub(o.meta_gets),
            meta_queries: self.meta_queries.saturating_sub(o.meta_queries),
            meta_query_items: self.meta_query_items.saturating_sub(o.meta_query_items),
            meta_puts: self.meta_puts.saturating_sub(o.meta_puts),
            meta_deletes: self.meta_deletes.saturating_sub(o.meta_deletes),
            meta_transactions: self.meta_transactions.saturating_sub(o.meta_transactions),
            meta_transaction_items: self
                .meta_transaction_items
                .saturating_sub(o.meta_transaction_items),
            meta_read_units: self.meta_read_units.saturating_sub(o.meta_read_units),
            meta_write_units: self.meta_write_units.saturating_sub(o.meta_write_units),
            meta_bytes_written: self.meta_bytes_written.saturating_sub(o.meta_bytes_written),
            blob_puts: self.blob_puts.saturating_sub(o.blob_puts),
            blob_gets: self.blob_gets.saturating_sub(o.blob_gets),
            blob_lists: self.blob_lists.saturating_sub(o.blob_lists),
            blob_deletes: self.blob_deletes.saturating_sub(o.blob_deletes),
            blob_presigns: self.blob_presigns.saturating_sub(o.blob_presigns),
            blob_bytes_put: self.blob_bytes_put.saturating_sub(o.blob_bytes_put),
            blob_bytes_got: self.blob_bytes_got.saturating_sub(o.blob_bytes_got),
            kms_calls: self.kms_calls.saturating_sub(o.kms_calls),
            queue_sends: self.queue_sends.saturating_sub(o.queue_sends),
            queue_receives: self.queue_receives.saturating_sub(o.queue_receives),
            queue_acks: self.queue_acks.saturating_sub(o.queue_acks),
            push_calls: self.push_calls.saturating_sub(o.push_calls),
        }
    }
}

impl Counters {
    /// The counts so far.
    pub fn snapshot(&self) -> OpCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OpCounts {
            meta_gets: l(&self.meta_gets),
            meta_queries: l(&self.meta_queries),
            meta_query_items: l(&self.meta_query_items),
            meta_puts: l(&self.meta_puts),
            meta_deletes: l(&self.meta_deletes),
            meta_transactions: l(&self.meta_transactions),
            meta_transaction_items: l(&self.meta_transaction_items),
            meta_read_units: l(&self.meta_read_units),
            meta_write_units: l(&self.meta_write_units),
            meta_bytes_written: l(&self.meta_bytes_written),
            blob_puts: l(&self.blob_puts),
            blob_gets: l(&self.blob_gets),
            blob_lists: l(&self.blob_lists),
            blob_deletes: l(&self.blob_deletes),
            blob_presigns: l(&self.blob_presigns),
            blob_bytes_put: l(&self.blob_bytes_put),
            blob_bytes_got: l(&self.blob_bytes_got),
            kms_calls: l(&self.kms_calls),
            queue_sends: l(&self.queue_sends),
            queue_receives: l(&self.queue_receives),
            queue_acks: l(&self.queue_acks),
            push_calls: l(&self.push_calls),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Wraps each port of `ports` in its counting wrapper; all four share the returned counters.
pub fn wrap(ports: Ports) -> (Ports, Arc<Counters>) {
    let c = Arc::new(Counters::default());
    let wrapped = Ports {
        meta: Arc::new(CountingMeta { inner: ports.meta, c: c.clone() }),
        blobs: Arc::new(CountingBlobs { inner: ports.blobs, c: c.clone() }),
        queue: Arc::new(CountingQueue { inner: ports.queue, c: c.clone() }),
        keys: Arc::new(CountingKeys { inner: ports.keys, c: c.clone() }),
        push: Arc::new(CountingPush { inner: ports.push, c: c.clone() }),
        // Not counted: reads of the team's own Secrets Manager or Parameter Store, one per
        // value an environment names, billed to that account rather than Stackhouse's.
        external: ports.external,
    };
    (wrapped, c)
}

/// An item's size as DynamoDB bills it: attribute names plus values (numbers counted as their
/// decimal digits, which bounds DynamoDB's packed encoding from above), keys included.
pub fn item_size(item: &Item) -> u64 {
    let value = |v: &Value| -> usize {
        match v {
            Value::S(s) => s.len(),
            Value::N(n) => n.to_string().len(),
            Value::B(b) => b.len(),
            Value::Bool(_) => 1,
        }
    };
    let attrs: usize = item.attrs.iter().map(|(k, v)| k.len() + value(v)).sum();
    (2 + item.pk.len() + 2 + item.sk.len() + attrs) as u64
}

/// Started units of `unit` bytes, at least one (DynamoDB's rounding).
fn units(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit).max(1)
}

struct CountingMeta {
    inner: Arc<dyn MetadataStore>,
    c: Arc<Counters>,
}

#[async_trait]
impl MetadataStore for CountingMeta {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, MetaError> {
        add(&self.c.meta_gets, 1);
        let out = self.inner.get(pk, sk).await;
        let size = out.as_ref().ok().and_then(Option::as_ref).map(item_size).unwrap_or(0);
        add(&self.c.meta_read_units, units(size, 4096));
        out
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), MetaError> {
        add(&self.c.meta_puts, 1);
        let size = item_size(&item);
        add(&self.c.meta_write_units, units(size, 1024));
        add(&self.c.meta_bytes_written, size);
        self.inner.put(item, condition).await
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<Condition>,
    ) -> Result<(), MetaError> {
        add(&self.c.meta_deletes, 1);
        add(&self.c.meta_write_units, 1);
        self.inner.delete(pk, sk, condition).await
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), MetaError> {
        add(&self.c.meta_transactions, 1);
        add(&self.c.meta_transaction_items, ops.len() as u64);
        for op in &ops {
            let size = match op {
                TransactOp::Put(item, _) => {
                    let size = item_size(item);
                    add(&self.c.meta_bytes_written, size);
                    size
                }
                TransactOp::Delete { .. } | TransactOp::Check { .. } => 0,
            };
            // Transactional writes (condition checks included) cost two units per started KiB.
            add(&self.c.meta_write_units, 2 * units(size, 1024));
        }
        self.inner.transact(ops).await
    }

    async fn update(&self, update: Update) -> Result<Item, MetaError> {
        // An UpdateItem is billed by the size of the item it leaves (or found, if larger).
        add(&self.c.meta_puts, 1);
        let out = self.inner.update(update).await;
        let size = out.as_ref().map(item_size).unwrap_or(0);
        add(&self.c.meta_write_units, units(size, 1024));
        add(&self.c.meta_bytes_written, size);
        out
    }

    async fn query(&self, query: Query) -> Result<Page, MetaError> {
        add(&self.c.meta_queries, 1);
        let out = self.inner.query(query).await;
        let (n, size) = match &out {
            Ok(page) => (page.items.len() as u64, page.items.iter().map(item_size).sum()),
            Err(_) => (0, 0),
        };
        add(&self.c.meta_query_items, n);
        add(&self.c.meta_read_units, units(size, 4096));
        out
    }
}

struct CountingBlobs {
    inner: Arc<dyn BlobStore>,
    c: Arc<Counters>,
}

#[async_trait]
impl BlobStore for CountingBlobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        add(&self.c.blob_puts, 1);
        add(&self.c.blob_bytes_put, body.len() as u64);
        self.inner.put(key, body).await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
        add(&self.c.blob_puts, 1);
        add(&self.c.blob_bytes_put, body.len() as u64);
        self.inner.put_if_absent(key, body).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        add(&self.c.blob_gets, 1);
        let out = self.inner.get(key).await;
        if let Ok(Some(b)) = &out {
            add(&self.c.blob_bytes_got, b.len() as u64);
        }
        out
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        add(&self.c.blob_deletes, 1);
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str, after: Option<String>) -> Result<BlobList, BlobError> {
        add(&self.c.blob_lists, 1);
        self.inner.list(prefix, after).await
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        response: ResponseHeaders<'_>,
    ) -> Result<String, BlobError> {
        add(&self.c.blob_presigns, 1);
        self.inner.presign_get(key, expires_in, response).await
    }

    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        add(&self.c.blob_presigns, 1);
        self.inner.presign_put(key, expires_in).await
    }
}

struct CountingQueue {
    inner: Arc<dyn Queue>,
    c: Arc<Counters>,
}

#[async_trait]
impl Queue for CountingQueue {
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> Result<String, QueueError> {
        add(&self.c.queue_sends, 1);
        self.inner.send(queue, body, delay).await
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        add(&self.c.queue_receives, 1);
        self.inner.receive(queue, max, visibility).await
    }

    async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        add(&self.c.queue_acks, 1);
        self.inner.ack(queue, receipt).await
    }

    async fn set_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        add(&self.c.queue_acks, 1);
        self.inner.set_visibility(queue, receipt, visibility).await
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        // Billed as one SQS request like a receive (GetQueueAttributes).
        add(&self.c.queue_receives, 1);
        self.inner.depth(queue).await
    }
}

struct CountingKeys {
    inner: Arc<dyn KeyService>,
    c: Arc<Counters>,
}

#[async_trait]
impl KeyService for CountingKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyError> {
        add(&self.c.kms_calls, 1);
        self.inner.generate_data_key(context).await
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<[u8; 32], KeyError> {
        add(&self.c.kms_calls, 1);
        self.inner.decrypt_data_key(wrapped, context).await
    }

    async fn wrap_data_key(
        &self,
        plaintext: &[u8; 32],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        add(&self.c.kms_calls, 1);
        self.inner.wrap_data_key(plaintext, context).await
    }

    async fn describe(&self) -> Result<(), KeyError> {
        add(&self.c.kms_calls, 1);
        self.inner.describe().await
    }
}

struct CountingPush {
    inner: Arc<dyn Push>,
    c: Arc<Counters>,
}

#[async_trait]
impl Push for CountingPush {
    async fn send(&self, connection: &str, frame: &str) -> Result<(), PushError> {
        add(&self.c.push_calls, 1);
        self.inner.send(connection, frame).await
    }

    async fn close(&self, connection: &str) -> Result<(), PushError> {
        add(&self.c.push_calls, 1);
        self.inner.close(connection).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded;

    #[tokio::test]
    async fn a_known_call_sequence_gives_known_counts() {
        let dir = std::env::temp_dir().join(format!("stackhouse-counting-{}", std::process::id()));
        let (ports, _) =
            embedded::open(&embedded::EmbeddedConfig::new(&dir, "http://127.0.0.1:1")).unwrap();
        let (ports, counters) = wrap(ports);

        // A 1,500-byte item: two write units, one read unit.
        let item = Item::new("P", "S").with("v", Value::S("x".repeat(1500)));
        ports.meta.put(item.clone(), Some(Condition::NotExists)).await.unwrap();
        assert!(ports.meta.get("P", "S").await.unwrap().is_some());
        assert!(ports.meta.get("P", "absent").await.unwrap().is_none());
        ports.meta.query(Query::prefix("P", "", 10)).await.unwrap();
        ports
            .meta
            .transact(vec![
                TransactOp::Put(Item::new("P", "T"), None),
                TransactOp::Check { pk: "P".into(), sk: "S".into(), condition: Condition::Exists },
            ])
            .await
            .unwrap();
        ports.meta.delete("P", "T", None).await.unwrap();
        ports.blobs.put("a/b", Bytes::from_static(b"hello")).await.unwrap();
        assert!(!ports.blobs.put_if_absent("a/b", Bytes::from_static(b"x")).await.unwrap());
        ports.blobs.get("a/b").await.unwrap();
        ports.blobs.list("a/", None).await.unwrap();
        ports.blobs.delete("a/b").await.unwrap();
        let ctx = EncryptionContext::from([("k".to_string(), "v".to_string())]);
        let key = ports.keys.generate_data_key(&ctx).await.unwrap();
        ports.keys.decrypt_data_key(&key.wrapped, &ctx).await.unwrap();
        ports.queue.send("jobs", "m", Duration::ZERO).await.unwrap();
        let got = ports.queue.receive("jobs", 1, Duration::from_secs(30)).await.unwrap();
        ports.queue.ack("jobs", &got[0].receipt).await.unwrap();

        let n = counters.snapshot();
        let size = item_size(&item);
        assert_eq!(size, 2 + 1 + 2 + 1 + 1 + 1500);
        assert_eq!(
            n,
            OpCounts {
                meta_gets: 2,
                meta_queries: 1,
                meta_query_items: 1,
                meta_puts: 1,
                meta_deletes: 1,
                meta_transactions: 1,
                meta_transaction_items: 2,
                // get of the item (1) + get of nothing (1) + query of one page (1).
                meta_read_units: 3,
                // put 2 + transaction 2×1 + 2×1 + delete 1.
                meta_write_units: 7,
                meta_bytes_written: size + item_size(&Item::new("P", "T")),
                blob_puts: 2,
                blob_gets: 1,
                blob_lists: 1,
                blob_deletes: 1,
                blob_presigns: 0,
                blob_bytes_put: 6,
                blob_bytes_got: 5,
                kms_calls: 2,
                queue_sends: 1,
                queue_receives: 1,
                queue_acks: 1,
                push_calls: 0,
            }
        );
        assert_eq!(n - n, OpCounts::default());
        assert_eq!(n.meta_requests(), 6);
        let _ = std::fs::remove_dir_all(dir);
    }
}
