//! Stored deployments: where they live in the blob store, how they are encoded (gzip of the
//! `UntypedDeployment` JSON exactly as received) and what the server validates
//! (docs/PROTOCOL-NOTES.md, What the server validates).

use std::io::{Read, Write};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// The export of a stack that has never been updated: a valid, empty v3 deployment.
pub const EMPTY: &str = r#"{"version":3,"deployment":{"manifest":{"time":"0001-01-01T00:00:00Z","magic":"","version":""}}}"#;

/// v4 features the CLI knows (docs/PROTOCOL-NOTES.md, Deployment envelope); a deployment using
/// any other cannot be read back by the CLI, so it is refused on the way in.
pub const KNOWN_FEATURES: &[&str] = &[
    "refreshBeforeUpdate",
    "views",
    "hooks",
    "taint",
    "replaceWith",
    "snippets-prototype",
    "extensionParameterization",
    "byteString",
];

/// Key of the deployment of stack version `version`: immutable once written.
pub fn version_key(stack_id: &str, version: i64) -> String {
    format!("deployments/{stack_id}/{version:010}.json.gz")
}

/// Key of an update's latest full checkpoint (overwritten by each checkpoint).
pub fn checkpoint_key(update_id: &str) -> String {
    format!("updates/{update_id}/checkpoint.json.gz")
}

/// gzip-compresses (fast level: this is on the request path), with libdeflate when it can
/// allocate its state (`service::deflate`), else with flate2.
pub fn gzip(data: &[u8]) -> Result<Bytes> {
    if let Some(gz) = super::deflate::gzip(data) {
        return Ok(Bytes::from(gz));
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(data).map_err(|e| Error::caused("gzip", e))?;
    enc.finish().map(Bytes::from).map_err(|e| Error::caused("gzip", e))
}

/// What to store for a body the client sent: its own gzip bytes when it compressed it (they
/// decode to `plain`), else `plain` compressed once.
pub fn as_received(compressed: Option<&Bytes>, plain: &[u8]) -> Result<Bytes> {
    match compressed {
        Some(gz) => Ok(gz.clone()),
        None => gzip(plain),
    }
}

/// Decompresses a stored blob.
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>> {
    if let Some(out) =
        super::inflate::stated_size(data).and_then(|n| super::inflate::exact(data, n))
    {
        return Ok(out);
    }
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| Error::caused("stored blob is not valid gzip", e))?;
    Ok(out)
}

/// Reads the stored `UntypedDeployment` at `key` as its decompressed bytes. A missing or
/// unreadable blob is our fault (it was validated on the way in), hence an internal error.
pub async fn read_stored(blobs: &dyn crate::ports::BlobStore, key: &str) -> Result<Vec<u8>> {
    let gz = blobs
        .get(key)
        .await?
        .ok_or_else(|| Error::internal(format!("deployment blob {key} is missing")))?;
    gunzip(&gz)
}

/// Reads the stored `UntypedDeployment` at `key` as JSON ([`read_stored`]).
pub async fn read_untyped(
    blobs: &dyn crate::ports::BlobStore,
    key: &str,
) -> Result<serde_json::Value> {
    serde_json::from_slice(&read_stored(blobs, key).await?)
        .map_err(|e| Error::caused(format!("stored deployment {key} is corrupt"), e))
}

/// What the server needs to know about a deployment it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Number of resources.
    pub resource_count: i64,
}

/// An `UntypedDeployment` read without parsing its deployment: what [`check_untyped`] reads,
/// and what [`untyped`] is rebuilt from.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "openapi",
    schemars(
        rename = "UntypedDeployment",
        description = "A deployment with its schema version (`apitype.UntypedDeployment`), stored \
                       and served exactly as the CLI sent it."
    )
)]
pub struct Envelope<'a> {
    /// The schema version.
    pub version: i64,
    /// The features of a version 4 deployment.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// The deployment, as sent.
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schemars(with = "serde_json::Value"))]
    pub deployment: &'a RawValue,
}

#[derive(Deserialize)]
struct Counted {
    #[serde(default)]
    resources: Option<Vec<serde::de::IgnoredAny>>,
}

/// Validates an `UntypedDeployment` (`{"version","features"?,"deployment"}`) whose version must
/// lie in `versions`, and summarises it. Everything else passes through untouched.
pub fn check_untyped(bytes: &[u8], versions: std::ops::RangeInclusive<i64>) -> Result<Summary> {
    // serde reads a struct from a JSON array too (`[3,[],{…}]`); what is stored must be the
    // object every reader (and the CLI) expects.
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return Err(Error::BadRequest("deployment must be a JSON object".into()));
    }
    let env: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadRequest(format!("invalid deployment: {e}")))?;
    check_parts(env.version, env.features.as_deref(), env.deployment, versions)
}

/// Validates the parts of a deployment sent separately (full checkpoints).
pub fn check_parts(
    version: i64,
    features: Option<&[String]>,
    deployment: &RawValue,
    versions: std::ops::RangeInclusive<i64>,
) -> Result<Summary> {
    if !versions.contains(&version) {
        return Err(Error::BadRequest(format!(
            "unsupported deployment version {version}; expected {} to {}",
            versions.start(),
            versions.end()
        )));
    }
    if let Some(unknown) =
        features.unwrap_or_default().iter().find(|f| !KNOWN_FEATURES.contains(&f.as_str()))
    {
        return Err(Error::BadRequest(format!(
            "the deployment uses the feature {unknown:?}, which the Pulumi CLI does not support"
        )));
    }
    super::limits::check_json_depth(deployment.get().as_bytes())?;
    if !deployment.get().trim_start().starts_with('{') {
        return Err(Error::BadRequest("deployment must be a JSON object".into()));
    }
    let counted: Counted = serde_json::from_str(deployment.get())
        .map_err(|e| Error::BadRequest(format!("invalid deployment: {e}")))?;
    Ok(Summary { resource_count: counted.resources.map(|r| r.len() as i64).unwrap_or(0) })
}

/// A stored full-checkpoint request (`{"isInvalid","version","features"?,"deployment"}`) read
/// as the deployment it carries, or None when `bytes` (already checked by [`check_untyped`])
/// is a deployment as it is, without the request's flag.
pub fn checkpoint_request(bytes: &[u8]) -> Result<Option<Envelope<'_>>> {
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(rename = "isInvalid", default)]
        is_invalid: Option<serde::de::IgnoredAny>,
        version: i64,
        #[serde(default)]
        features: Option<Vec<String>>,
        #[serde(borrow)]
        deployment: &'a RawValue,
    }
    let r: Request = serde_json::from_slice(bytes)
        .map_err(|e| Error::caused("stored checkpoint is corrupt", e))?;
    Ok(r.is_invalid.map(|_| Envelope {
        version: r.version,
        features: r.features,
        deployment: r.deployment,
    }))
}

/// Builds the `UntypedDeployment` bytes from a version, features and the raw inner deployment,
/// without re-serialising the deployment.
pub fn untyped(
    version: i64,
    features: Option<&[String]>,
    deployment: &RawValue,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(deployment.get().len() + 64);
    out.extend_from_slice(format!("{{\"version\":{version}").as_bytes());
    if let Some(f) = features.filter(|f| !f.is_empty()) {
        out.extend_from_slice(b",\"features\":");
        serde_json::to_writer(&mut out, f).map_err(|e| Error::caused("JSON encoding", e))?;
    }
    out.extend_from_slice(b",\"deployment\":");
    out.extend_from_slice(deployment.get().as_bytes());
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_request_is_read_as_its_deployment() {
        let req = br#"{"isInvalid":false,"version":3,"deployment":{"resources":[]}}"#;
        let env = checkpoint_request(req).unwrap().expect("a request");
        assert_eq!((env.version, env.deployment.get()), (3, r#"{"resources":[]}"#));
        let plain = br#"{"version":3,"features":[],"deployment":{}}"#;
        assert!(checkpoint_request(plain).unwrap().is_none(), "already a deployment");
    }

    #[test]
    fn untyped_keeps_the_deployment_bytes() {
        let raw = RawValue::from_string(
            r#"{"manifest":{"time":"t"},  "resources":[{"urn":"a"}]}"#.into(),
        )
        .unwrap();
        let bytes = untyped(4, Some(&["views".to_string()]), &raw).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"version":4,"features":["views"],"deployment":{"manifest":{"time":"t"},  "resources":[{"urn":"a"}]}}"#
        );
        assert_eq!(check_untyped(&bytes, 1..=4).unwrap().resource_count, 1);
    }

    #[test]
    fn validation_refuses_what_the_cli_could_not_read() {
        assert!(check_untyped(br#"{"version":5,"deployment":{}}"#, 1..=4).is_err());
        assert!(check_untyped(br#"{"version":0,"deployment":{}}"#, 1..=4).is_err());
        assert!(check_untyped(br#"{"version":3,"deployment":[]}"#, 1..=4).is_err());
        // Found by the deployment fuzz target: serde reads a struct from an array.
        assert!(check_untyped(b"\t[1,[],{}]", 1..=4).is_err());
        assert!(
            check_untyped(br#"{"version":4,"features":["nope"],"deployment":{}}"#, 1..=4).is_err()
        );
        assert!(check_untyped(br#"{"version":3}"#, 1..=4).is_err());
        assert_eq!(check_untyped(EMPTY.as_bytes(), 1..=4).unwrap().resource_count, 0);
    }
}
