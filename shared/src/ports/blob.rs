//! Blob store port, shaped like one S3 bucket.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key is not acceptable (empty, `..` segments, too long).
    #[error("invalid blob key: {0}")]
    InvalidKey(String),
    /// The store could not be reached or failed.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// The function was built without this port: its route or job table entry does not declare
    /// it (see `adapters::undeclared`). A table bug, never a transient failure.
    #[error("{0}")]
    Undeclared(String),
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobList {
    /// Keys in lexicographic order.
    pub keys: Vec<String>,
    /// Pass to the next `list` call to continue, when more keys may follow.
    pub next: Option<String>,
}

/// The blob store.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores (replaces) an object. Readers see either the old or the new bytes, never a mix.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError>;
    /// Stores the object only if no object has the key. Returns false (and changes nothing)
    /// when one already exists.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError>;
    /// Reads an object (None when absent).
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError>;
    /// Deletes an object; deleting an absent key succeeds.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Lists keys with the prefix, in lexicographic order, one page at a time.
    async fn list(&self, prefix: &str, after: Option<String>) -> Result<BlobList, BlobError>;
    /// A URL that lets anyone GET the object, without credentials, until it expires. The
    /// response carries the given `Content-Encoding`/`Content-Type` (signed into the URL, like
    /// S3's `response-content-*` overrides) instead of the stored object's own.
    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        response: ResponseHeaders<'_>,
    ) -> Result<String, BlobError>;
    /// A URL that lets anyone PUT (create or replace) the object, without credentials, until
    /// it expires: an upload that goes from the client straight to the store, never through a
    /// function's body. Whoever hands it out must check what arrived before trusting it.
    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError>;
}

/// Response headers a presigned GET answers with, overriding the stored object's (S3's
/// `response-content-encoding` / `response-content-type` query parameters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseHeaders<'a> {
    /// `Content-Encoding` of the response, e.g. `gzip` for a stored gzip object that the client
    /// should decompress (the Pulumi CLI decompresses by this header, docs/PROTOCOL-NOTES.md,
    /// Responses and errors).
    pub content_encoding: Option<&'a str>,
    /// `Content-Type` of the response.
    pub content_type: Option<&'a str>,
}

impl ResponseHeaders<'static> {
    /// No overrides: the stored object's own headers.
    pub const NONE: ResponseHeaders<'static> =
        ResponseHeaders { content_encoding: None, content_type: None };
    /// A stored gzip of a JSON document, served as JSON with `Content-Encoding: gzip`.
    pub const GZIP_JSON: ResponseHeaders<'static> =
        ResponseHeaders { content_encoding: Some("gzip"), content_type: Some("application/json") };
}

/// Checks a blob key: non-empty, at most 1024 bytes, relative, no empty/`.`/`..` segments.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = key.is_empty()
        || key.len() > 1024
        || key.starts_with('/')
        || key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || key.chars().any(|c| c.is_control() || c == '\\');
    if bad {
        Err(BlobError::InvalidKey(key.chars().take(100).collect()))
    } else {
        Ok(())
    }
}
