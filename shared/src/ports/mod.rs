//! Ports: the narrow, service-shaped interfaces the domain is written against
//! (docs/ARCHITECTURE.md, Ports and their two adapters; Shared contract tests). Each has an
//! embedded adapter (one process, no network) and an AWS adapter (DynamoDB, S3, SQS, KMS). Both
//! pass the same contract tests in `tests/`.

pub mod blob;
pub mod external;
pub mod keys;
pub mod launcher;
pub mod metadata;
pub mod needs;
pub mod push;
pub mod queue;

pub use blob::{BlobError, BlobList, BlobStore};
pub use external::{ExternalError, ExternalSecrets};
pub use keys::{DataKey, EncryptionContext, KeyError, KeyService};
pub use metadata::{
    Condition, Item, MetaError, MetadataStore, Page, Query, SortKey, TransactOp, Update, Value,
};
pub use needs::{Access, Needs};
pub use push::{Push, PushError};
pub use queue::{Message, Queue, QueueDepth, QueueError, QueueSpec};

use std::sync::Arc;

/// The six ports, built once per process (cold start) and shared by every handler.
#[derive(Clone)]
pub struct Ports {
    /// Metadata (DynamoDB table or embedded SQLite).
    pub meta: Arc<dyn MetadataStore>,
    /// Blobs (S3 bucket or embedded files).
    pub blobs: Arc<dyn BlobStore>,
    /// Queues (SQS or embedded SQLite).
    pub queue: Arc<dyn Queue>,
    /// Data keys (KMS or embedded master key).
    pub keys: Arc<dyn KeyService>,
    /// Frames to WebSocket clients (API Gateway's management API, or the emulator's sockets).
    pub push: Arc<dyn Push>,
    /// Secrets kept outside Stackhouse (Secrets Manager and Parameter Store, or the emulator's
    /// stand-in file).
    pub external: Arc<dyn ExternalSecrets>,
}
