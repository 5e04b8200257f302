//! Where an export lives: named files under a root. The service writes through this trait; the
//! operator's tool picks a directory or an S3 prefix ([`BlobArchive`] over any blob store).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::ports::BlobStore;

/// The files of one export.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Writes (replaces) a file.
    async fn write(&self, path: &str, body: Bytes) -> Result<()>;
    /// Reads a file (None when absent).
    async fn read(&self, path: &str) -> Result<Option<Bytes>>;
    /// Where it is, for messages (`/backups/acme`, `s3://bucket/prefix`).
    fn location(&self) -> String;
}

/// An archive under a key prefix of a blob store (an S3 bucket, for `s3://bucket/prefix`).
pub struct BlobArchive {
    blobs: Arc<dyn BlobStore>,
    prefix: String,
    location: String,
}

impl BlobArchive {
    /// The archive at `prefix` (no leading or trailing `/` needed) of `blobs`; `location`
    /// names it in messages.
    pub fn new(blobs: Arc<dyn BlobStore>, prefix: &str, location: &str) -> BlobArchive {
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        BlobArchive { blobs, prefix, location: location.to_string() }
    }

    fn key(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

#[async_trait]
impl Archive for BlobArchive {
    async fn write(&self, path: &str, body: Bytes) -> Result<()> {
        Ok(self.blobs.put(&self.key(path), body).await?)
    }

    async fn read(&self, path: &str) -> Result<Option<Bytes>> {
        Ok(self.blobs.get(&self.key(path)).await?)
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// A file the manifest lists but the archive lacks.
pub(crate) fn missing(archive: &dyn Archive, path: &str) -> Error {
    Error::BadRequest(format!("{path} is missing from the export at {}", archive.location()))
}

/// Records an export or import in the organization's audit log: the operator's tool acts
/// outside any request, so it writes its own entry (actor `operator`, no token).
pub(crate) async fn audit(
    app: &crate::app::App,
    org: &str,
    action: &str,
    archive: &dyn Archive,
    description: String,
) -> Result<()> {
    let (secs, micros) = app.clock.now_micros();
    let entry = crate::service::audit::Entry {
        time_us: secs.saturating_mul(1_000_000).saturating_add(i64::from(micros)),
        actor: "operator".into(),
        token_id: String::new(),
        token_name: String::new(),
        source_ip: String::new(),
        action: action.into(),
        resource: archive.location(),
        status: None,
        description,
    };
    crate::service::audit::append(app.ports.meta.as_ref(), org, &entry).await
}
