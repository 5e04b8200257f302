//! Deliberately broken adapters: wrappers that each violate one rule of the contract. Running
//! a check against one of them must panic; that is how we know the checks can fail at all.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use stackhouse::ports::blob::{BlobError, BlobList, ResponseHeaders};
use stackhouse::ports::metadata::TTL_ATTR;
use stackhouse::ports::queue::QueueDepth;
use stackhouse::ports::{
    BlobStore, DataKey, EncryptionContext, Item, KeyError, KeyService, Message, MetaError,
    MetadataStore, Page, Ports, Query, Queue, QueueError, SortKey, TransactOp, Update,
};

/// How a [`BrokenMeta`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFlaw {
    /// Puts and deletes ignore their conditions.
    IgnoreConditions,
    /// Transactions run op by op: earlier ops stay when a later condition fails; no
    /// validation of duplicates or size.
    PiecemealTransactions,
    /// Put merges attributes into the existing item instead of replacing it.
    MergingPut,
    /// The TTL attribute is dropped on put, so nothing expires.
    NoTtl,
    /// Prefix queries compare case-insensitively (what `LIKE` does).
    CaseInsensitivePrefix,
    /// Query pages never carry `next`.
    NoNext,
    /// Updates read the item, apply the change and put it back: not atomic, so concurrent
    /// adds lose increments.
    ReadThenWriteUpdate,
}

/// A metadata store with one [`MetaFlaw`].
pub struct BrokenMeta(pub Arc<dyn MetadataStore>, pub MetaFlaw);

#[async_trait]
impl MetadataStore for BrokenMeta {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, MetaError> {
        self.0.get(pk, sk).await
    }
    async fn put(
        &self,
        mut item: Item,
        condition: Option<stackhouse::ports::Condition>,
    ) -> Result<(), MetaError> {
        match self.1 {
            MetaFlaw::IgnoreConditions => self.0.put(item, None).await,
            MetaFlaw::MergingPut => {
                if let Some(old) = self.0.get(&item.pk, &item.sk).await? {
                    for (k, v) in old.attrs {
                        item.attrs.entry(k).or_insert(v);
                    }
                }
                self.0.put(item, condition).await
            }
            MetaFlaw::NoTtl => {
                item.attrs.remove(TTL_ATTR);
                self.0.put(item, condition).await
            }
            _ => self.0.put(item, condition).await,
        }
    }
    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<stackhouse::ports::Condition>,
    ) -> Result<(), MetaError> {
        let condition = if self.1 == MetaFlaw::IgnoreConditions { None } else { condition };
        self.0.delete(pk, sk, condition).await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), MetaError> {
        if self.1 != MetaFlaw::PiecemealTransactions {
            return self.0.transact(ops).await;
        }
        for op in ops {
            match op {
                TransactOp::Put(item, c) => self.0.put(item, c).await?,
                TransactOp::Delete { pk, sk, condition } => {
                    self.0.delete(&pk, &sk, condition).await?
                }
                TransactOp::Check { pk, sk, condition } => {
                    if !condition.holds(self.0.get(&pk, &sk).await?.as_ref()) {
                        return Err(MetaError::ConditionFailed);
                    }
                }
            }
        }
        Ok(())
    }
    async fn query(&self, mut query: Query) -> Result<Page, MetaError> {
        match (self.1, query.sk.clone()) {
            (MetaFlaw::NoNext, _) => Ok(Page { next: None, ..self.0.query(query).await? }),
            (MetaFlaw::CaseInsensitivePrefix, SortKey::BeginsWith(p)) => {
                query.sk = SortKey::All;
                let limit = query.limit;
                query.limit = 1000;
                let mut page = self.0.query(query).await?;
                let p = p.to_lowercase();
                page.items.retain(|i| i.sk.to_lowercase().starts_with(&p));
                page.items.truncate(limit);
                page.next = None;
                Ok(page)
            }
            _ => self.0.query(query).await,
        }
    }
    async fn update(&self, update: Update) -> Result<Item, MetaError> {
        match self.1 {
            MetaFlaw::IgnoreConditions => self.0.update(Update { condition: None, ..update }).await,
            MetaFlaw::ReadThenWriteUpdate => {
                update.check()?;
                let current = self.0.get(&update.pk, &update.sk).await?;
                if let Some(c) = &update.condition {
                    if !c.holds(current.as_ref()) {
                        return Err(MetaError::ConditionFailed);
                    }
                }
                let item = update.apply(current)?;
                // Widen the window between the read and the write, as a network would.
                tokio::task::yield_now().await;
                self.0.put(item.clone(), None).await?;
                Ok(item)
            }
            _ => self.0.update(update).await,
        }
    }
}

/// How a [`BrokenBlobs`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobFlaw {
    /// put_if_absent overwrites and always reports success.
    OverwritingPutIfAbsent,
    /// Listing ignores `after`.
    ListIgnoresAfter,
    /// Presigned URLs live for an hour, whatever was asked.
    PresignIgnoresExpiry,
    /// Presigned URLs ignore the requested response headers.
    PresignIgnoresResponseHeaders,
    /// Writes report success even when the store refused them.
    SwallowErrors,
}

/// A blob store with one [`BlobFlaw`].
pub struct BrokenBlobs(pub Arc<dyn BlobStore>, pub BlobFlaw);

#[async_trait]
impl BlobStore for BrokenBlobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        match self.0.put(key, body).await {
            Err(_) if self.1 == BlobFlaw::SwallowErrors => Ok(()),
            r => r,
        }
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
        if self.1 == BlobFlaw::OverwritingPutIfAbsent {
            self.0.put(key, body).await.map(|()| true)
        } else {
            self.0.put_if_absent(key, body).await
        }
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        self.0.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str, after: Option<String>) -> Result<BlobList, BlobError> {
        let after = if self.1 == BlobFlaw::ListIgnoresAfter { None } else { after };
        self.0.list(prefix, after).await
    }
    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        response: ResponseHeaders<'_>,
    ) -> Result<String, BlobError> {
        let expires_in = if self.1 == BlobFlaw::PresignIgnoresExpiry {
            Duration::from_secs(3600)
        } else {
            expires_in
        };
        let response = if self.1 == BlobFlaw::PresignIgnoresResponseHeaders {
            ResponseHeaders::NONE
        } else {
            response
        };
        self.0.presign_get(key, expires_in, response).await
    }
    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        // A PUT URL that outlives its expiry is the same flaw as for GET.
        let expires_in = if self.1 == BlobFlaw::PresignIgnoresExpiry {
            Duration::from_secs(3600)
        } else {
            expires_in
        };
        self.0.presign_put(key, expires_in).await
    }
}

/// How a [`BrokenQueue`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFlaw {
    /// Received messages are made visible again at once.
    NoHiding,
    /// Every message reports receive count 1.
    CountStuckAtOne,
    /// Delays are ignored.
    NoDelay,
    /// Sends report success even when the queue refused them.
    SwallowErrors,
}

/// A queue with one [`QueueFlaw`].
pub struct BrokenQueue(pub Arc<dyn Queue>, pub QueueFlaw);

#[async_trait]
impl Queue for BrokenQueue {
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> Result<String, QueueError> {
        let delay = if self.1 == QueueFlaw::NoDelay { Duration::ZERO } else { delay };
        match self.0.send(queue, body, delay).await {
            Err(_) if self.1 == QueueFlaw::SwallowErrors => Ok("swallowed".to_string()),
            r => r,
        }
    }
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let mut got = self.0.receive(queue, max, visibility).await?;
        for m in &mut got {
            match self.1 {
                QueueFlaw::NoHiding => {
                    self.0.set_visibility(queue, &m.receipt, Duration::ZERO).await?
                }
                QueueFlaw::CountStuckAtOne => m.receive_count = 1,
                QueueFlaw::NoDelay | QueueFlaw::SwallowErrors => {}
            }
        }
        Ok(got)
    }
    async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        self.0.ack(queue, receipt).await
    }
    async fn set_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        self.0.set_visibility(queue, receipt, visibility).await
    }
    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        self.0.depth(queue).await
    }
}

/// A key service that binds every key to the empty context, whatever it is given.
pub struct ContextBlindKeys(pub Arc<dyn KeyService>);

#[async_trait]
impl KeyService for ContextBlindKeys {
    async fn generate_data_key(&self, _: &EncryptionContext) -> Result<DataKey, KeyError> {
        self.0.generate_data_key(&EncryptionContext::new()).await
    }
    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        _: &EncryptionContext,
    ) -> Result<[u8; 32], KeyError> {
        self.0.decrypt_data_key(wrapped, &EncryptionContext::new()).await
    }
    async fn wrap_data_key(
        &self,
        plaintext: &[u8; 32],
        _: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        self.0.wrap_data_key(plaintext, &EncryptionContext::new()).await
    }
    async fn describe(&self) -> Result<(), KeyError> {
        self.0.describe().await
    }
}

/// `ports` with its metadata store broken.
pub fn meta(mut ports: Ports, flaw: MetaFlaw) -> Ports {
    ports.meta = Arc::new(BrokenMeta(ports.meta, flaw));
    ports
}
/// `ports` with its blob store broken.
pub fn blobs(mut ports: Ports, flaw: BlobFlaw) -> Ports {
    ports.blobs = Arc::new(BrokenBlobs(ports.blobs, flaw));
    ports
}
/// `ports` with its queue broken.
pub fn queue(mut ports: Ports, flaw: QueueFlaw) -> Ports {
    ports.queue = Arc::new(BrokenQueue(ports.queue, flaw));
    ports
}
/// `ports` with a key service that ignores encryption contexts.
pub fn keys(mut ports: Ports) -> Ports {
    ports.keys = Arc::new(ContextBlindKeys(ports.keys));
    ports
}
