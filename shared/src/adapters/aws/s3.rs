//! [`BlobStore`] on one S3 bucket. S3 writes are atomic per object, which gives the port's
//! "old or new bytes, never a mix"; `put_if_absent` is S3's conditional write
//! (`If-None-Match: *`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use super::readable;
use crate::ports::blob::{validate_key, BlobError, BlobList, BlobStore, ResponseHeaders};

/// The S3 blob store.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

impl S3Blobs {
    /// A store on `bucket`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Blobs { client, bucket: bucket.into() }
    }
}

fn unavailable<E: std::error::Error>(err: E) -> BlobError {
    BlobError::Unavailable(readable(&err))
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
        validate_key(key)?;
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                // 412: the object exists. 409: a concurrent conditional write to the same key
                // is in flight; one of the two wins, and it is not us, so the key is taken.
                let status = e.raw_response().map(|r| r.status().as_u16());
                let code = e.code();
                if matches!(code, Some("PreconditionFailed" | "ConditionalRequestConflict"))
                    || matches!(status, Some(412 | 409))
                {
                    Ok(false)
                } else {
                    Err(unavailable(e))
                }
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        validate_key(key)?;
        let result = self.client.get_object().bucket(&self.bucket).key(key).send().await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                return match e.into_service_error() {
                    GetObjectError::NoSuchKey(_) => Ok(None),
                    other => Err(unavailable(other)),
                }
            }
        };
        let body = out.body.collect().await.map_err(|e| {
            BlobError::Unavailable(format!("reading object {key}: {}", readable(&e)))
        })?;
        Ok(Some(body.into_bytes()))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        // S3 answers 204 for absent keys too, which is the port's contract.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list(&self, prefix: &str, after: Option<String>) -> Result<BlobList, BlobError> {
        // `after` is a key (the contract lets callers start after any key, existing or not),
        // which is exactly S3's StartAfter; the next page starts after this page's last key.
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after)
            .send()
            .await
            .map_err(unavailable)?;
        let keys: Vec<String> =
            out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
        let next = if out.is_truncated() == Some(true) { keys.last().cloned() } else { None };
        Ok(BlobList { keys, next })
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        response: ResponseHeaders<'_>,
    ) -> Result<String, BlobError> {
        validate_key(key)?;
        // Over 7 days (SigV4's limit) is refused here rather than silently shortened.
        let config = PresigningConfig::expires_in(expires_in).map_err(|e| {
            BlobError::Unavailable(format!("cannot presign for {expires_in:?}: {}", readable(&e)))
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            // Signed query parameters: S3 answers with these headers instead of the object's.
            .set_response_content_encoding(response.content_encoding.map(str::to_string))
            .set_response_content_type(response.content_type.map(str::to_string))
            .presigned(config)
            .await
            .map_err(unavailable)?;
        Ok(request.uri().to_string())
    }

    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        validate_key(key)?;
        let config = PresigningConfig::expires_in(expires_in).map_err(|e| {
            BlobError::Unavailable(format!("cannot presign for {expires_in:?}: {}", readable(&e)))
        })?;
        // No content type or checksum is signed: clients PUT whatever they have (the Pulumi
        // CLI sends only the headers it was told to), and the receiver checks the bytes after.
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(unavailable)?;
        Ok(request.uri().to_string())
    }
}
