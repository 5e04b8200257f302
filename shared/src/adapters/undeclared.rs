//! The adapter behind a port that a function was built without: every call fails with an
//! `Undeclared` error naming the port (answered as a 500 and logged).
//!
//! A Lambda function connects only the ports its route's or job's `needs` declare (see
//! [`super::aws::connect_for`]), so that its binary links only those AWS clients. A handler that
//! reaches a port its table entry does not declare is a table bug (its IAM role would refuse
//! the call anyway); this makes it fail loudly on the first call instead of at some distance.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::ports::blob::ResponseHeaders;
use crate::ports::external::{AwsLogin, ExternalError, ExternalSecrets, Parameter, SecretVersion};
use crate::ports::{
    BlobError, BlobList, BlobStore, DataKey, EncryptionContext, KeyError, KeyService, Message,
    MetaError, MetadataStore, Page, Query, Queue, QueueDepth, QueueError, TransactOp,
};
use crate::ports::{Condition, Item, Push, PushError, Update};

/// A port this function was built without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undeclared {
    /// The port's field name in `Needs` / `Ports`: `meta`, `blobs`, `queue`, `keys`, `push`
    /// or `external`.
    pub port: &'static str,
}

impl Undeclared {
    /// The error text every call returns.
    pub fn message(&self) -> String {
        format!(
            "port {port} is not connected in this function: its route or job table entry \
             declares `{port}: Access::None`, yet the handler used it (fix the entry's needs)",
            port = self.port
        )
    }
}

#[async_trait]
impl MetadataStore for Undeclared {
    async fn get(&self, _pk: &str, _sk: &str) -> Result<Option<Item>, MetaError> {
        Err(MetaError::Undeclared(self.message()))
    }
    async fn put(&self, _item: Item, _condition: Option<Condition>) -> Result<(), MetaError> {
        Err(MetaError::Undeclared(self.message()))
    }
    async fn delete(
        &self,
        _pk: &str,
        _sk: &str,
        _condition: Option<Condition>,
    ) -> Result<(), MetaError> {
        Err(MetaError::Undeclared(self.message()))
    }
    async fn transact(&self, _ops: Vec<TransactOp>) -> Result<(), MetaError> {
        Err(MetaError::Undeclared(self.message()))
    }
    async fn query(&self, _query: Query) -> Result<Page, MetaError> {
        Err(MetaError::Undeclared(self.message()))
    }
    async fn update(&self, _update: Update) -> Result<Item, MetaError> {
        Err(MetaError::Undeclared(self.message()))
    }
}

#[async_trait]
impl BlobStore for Undeclared {
    async fn put(&self, _key: &str, _body: Bytes) -> Result<(), BlobError> {
        Err(BlobError::Undeclared(self.message()))
    }
    async fn put_if_absent(&self, _key: &str, _body: Bytes) -> Result<bool, BlobError> {
        Err(BlobError::Undeclared(self.message()))
    }
    async fn get(&self, _key: &str) -> Result<Option<Bytes>, BlobError> {
        Err(BlobError::Undeclared(self.message()))
    }
    async fn delete(&self, _key: &str) -> Result<(), BlobError> {
        Err(BlobError::Undeclared(self.message()))
    }
    async fn list(&self, _prefix: &str, _after: Option<String>) -> Result<BlobList, BlobError> {
        Err(BlobError::Undeclared(self.message()))
    }
    async fn presign_get(
        &self,
        _key: &str,
        _expires_in: Duration,
        _response: ResponseHeaders<'_>,
    ) -> Result<String, BlobError> {
        Err(BlobError::Undeclared(self.message()))
    }
    async fn presign_put(&self, _key: &str, _expires_in: Duration) -> Result<String, BlobError> {
        Err(BlobError::Undeclared(self.message()))
    }
}

#[async_trait]
impl Queue for Undeclared {
    async fn send(
        &self,
        _queue: &str,
        _body: &str,
        _delay: Duration,
    ) -> Result<String, QueueError> {
        Err(QueueError::Undeclared(self.message()))
    }
    async fn receive(
        &self,
        _queue: &str,
        _max: usize,
        _visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        Err(QueueError::Undeclared(self.message()))
    }
    async fn ack(&self, _queue: &str, _receipt: &str) -> Result<(), QueueError> {
        Err(QueueError::Undeclared(self.message()))
    }
    async fn set_visibility(
        &self,
        _queue: &str,
        _receipt: &str,
        _visibility: Duration,
    ) -> Result<(), QueueError> {
        Err(QueueError::Undeclared(self.message()))
    }
    async fn depth(&self, _queue: &str) -> Result<QueueDepth, QueueError> {
        Err(QueueError::Undeclared(self.message()))
    }
}

#[async_trait]
impl KeyService for Undeclared {
    async fn generate_data_key(&self, _context: &EncryptionContext) -> Result<DataKey, KeyError> {
        Err(KeyError::Undeclared(self.message()))
    }
    async fn decrypt_data_key(
        &self,
        _wrapped: &[u8],
        _context: &EncryptionContext,
    ) -> Result<[u8; 32], KeyError> {
        Err(KeyError::Undeclared(self.message()))
    }
    async fn wrap_data_key(
        &self,
        _plaintext: &[u8; 32],
        _context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Undeclared(self.message()))
    }
    async fn describe(&self) -> Result<(), KeyError> {
        Err(KeyError::Undeclared(self.message()))
    }
}

#[async_trait]
impl Push for Undeclared {
    async fn send(&self, _connection: &str, _frame: &str) -> Result<(), PushError> {
        Err(PushError::Undeclared(self.message()))
    }
    async fn close(&self, _connection: &str) -> Result<(), PushError> {
        Err(PushError::Undeclared(self.message()))
    }
}

#[async_trait]
impl ExternalSecrets for Undeclared {
    async fn aws_secret(
        &self,
        _login: &AwsLogin,
        _region: &str,
        _secret_id: &str,
        _version: &SecretVersion,
    ) -> Result<String, ExternalError> {
        Err(ExternalError::Undeclared(self.message()))
    }
    async fn aws_parameter(
        &self,
        _login: &AwsLogin,
        _region: &str,
        _name: &str,
        _decrypt: bool,
    ) -> Result<Parameter, ExternalError> {
        Err(ExternalError::Undeclared(self.message()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::error::Error;
    use crate::ports::Ports;

    fn stubs() -> Ports {
        Ports {
            meta: Arc::new(Undeclared { port: "meta" }),
            blobs: Arc::new(Undeclared { port: "blobs" }),
            queue: Arc::new(Undeclared { port: "queue" }),
            keys: Arc::new(Undeclared { port: "keys" }),
            push: Arc::new(Undeclared { port: "push" }),
            external: Arc::new(Undeclared { port: "external" }),
        }
    }

    /// Every call of every port fails as a 500 whose logged text names the port; the client
    /// sees only the generic message.
    #[tokio::test]
    async fn every_call_fails_loudly_naming_the_port() {
        let p = stubs();
        let ctx = EncryptionContext::new();
        let t = Duration::ZERO;
        let hdrs = ResponseHeaders::default();
        let login = AwsLogin {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: String::new(),
        };
        let version = SecretVersion::default();
        let calls: Vec<(&str, Error)> = vec![
            ("meta", p.meta.get("a", "b").await.unwrap_err().into()),
            ("meta", p.meta.put(Item::new("a", "b"), None).await.unwrap_err().into()),
            ("meta", p.meta.delete("a", "b", None).await.unwrap_err().into()),
            ("meta", p.meta.transact(vec![]).await.unwrap_err().into()),
            ("meta", p.meta.query(Query::prefix("a", "", 1)).await.unwrap_err().into()),
            ("meta", p.meta.update(Update::new("a", "b").add("n", 1)).await.unwrap_err().into()),
            ("blobs", p.blobs.put("k", Bytes::new()).await.unwrap_err().into()),
            ("blobs", p.blobs.put_if_absent("k", Bytes::new()).await.unwrap_err().into()),
            ("blobs", p.blobs.get("k").await.unwrap_err().into()),
            ("blobs", p.blobs.delete("k").await.unwrap_err().into()),
            ("blobs", p.blobs.list("k", None).await.unwrap_err().into()),
            ("blobs", p.blobs.presign_get("k", t, hdrs).await.unwrap_err().into()),
            ("queue", p.queue.send("jobs", "x", t).await.unwrap_err().into()),
            ("queue", p.queue.receive("jobs", 1, t).await.unwrap_err().into()),
            ("queue", p.queue.ack("jobs", "r").await.unwrap_err().into()),
            ("queue", p.queue.set_visibility("jobs", "r", t).await.unwrap_err().into()),
            ("keys", p.keys.generate_data_key(&ctx).await.unwrap_err().into()),
            ("keys", p.keys.decrypt_data_key(b"w", &ctx).await.unwrap_err().into()),
            ("push", p.push.send("c", "{}").await.unwrap_err().into()),
            ("push", p.push.close("c").await.unwrap_err().into()),
            (
                "external",
                p.external.aws_secret(&login, "r", "s", &version).await.unwrap_err().into(),
            ),
            (
                "external",
                p.external.aws_parameter(&login, "r", "n", true).await.unwrap_err().into(),
            ),
        ];
        for (port, e) in calls {
            assert_eq!(e.status().as_u16(), 500, "{port}: {e}");
            assert!(matches!(e, Error::Internal(_)), "{port}: {e:?}");
            let text = e.to_string();
            assert!(text.starts_with(&format!("port {port} is not connected")), "{text}");
            assert!(text.contains(&format!("`{port}: Access::None`")), "{text}");
            assert_eq!(e.client_message(), "Internal Server Error: an unexpected error occurred");
        }
    }
}
