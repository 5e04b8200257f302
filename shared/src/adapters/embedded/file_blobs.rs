//! [`BlobStore`] on the local file system, with S3's semantics: atomic replace, atomic
//! create-if-absent, lexicographic listing with a continuation, and presigned GET URLs that
//! the emulator serves and checks with [`PresignVerifier`].
//!
//! # On-disk layout
//!
//! A key's `/`-separated segments become directories, but S3 lets `a` and `a/b` both be
//! objects, and keys may hold characters (or lengths) a file system mishandles. So every
//! segment is percent-encoded (only `a-z 0-9 . _ -` stay literal, escapes use upper-case hex:
//! safe on case-insensitive and normalising file systems) and split into chunks, and each path
//! component is tagged by a two-character prefix:
//!
//! - `c_…` a directory holding the next chunk of the same (long) segment,
//! - `d_…` a directory: the last chunk of a segment followed by `/`,
//! - `f_…` a file: the last chunk of the key,
//! - `t_…` a temp file being written (never listed).
//!
//! E.g. `deployments/Stack-1/3.json.gz` → `d_deployments/d_%53tack-1/f_3.json.gz`.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::dir_sync::DirSyncs;
use super::{load_or_create_secret, now_secs};
use crate::adapters::AdapterError;
use crate::ports::blob::{validate_key, BlobError, BlobList, BlobStore, ResponseHeaders};

/// Path prefix, under the emulator's public URL, of presigned blob URLs.
pub const PRESIGN_PATH_PREFIX: &str = "/_stackhouse/blobs/";
/// Keys per page of a listing (S3's page size).
const PAGE: usize = 1000;
/// Most encoded bytes per path component (file systems allow 255, the tag takes 2).
const CHUNK: usize = 180;
/// Attempts of a write racing a delete that removes the (momentarily empty) directory.
const WRITE_ATTEMPTS: usize = 5;

/// The embedded blob store: one file per object under a root directory.
pub struct FileBlobs {
    root: Arc<PathBuf>,
    /// Directory fsyncs after renames, shared by concurrent writes into one directory.
    dir_syncs: Arc<DirSyncs>,
    public_url: String,
    signer: Arc<PresignVerifier>,
}

impl FileBlobs {
    /// Opens (creating when needed) the store rooted at `root`. Presigned URLs start with
    /// `public_url` and are signed by `signer`.
    pub fn open(
        root: &Path,
        public_url: &str,
        signer: Arc<PresignVerifier>,
    ) -> Result<Self, AdapterError> {
        std::fs::create_dir_all(root)
            .map_err(|e| AdapterError::new("blobs", format!("create {}: {e}", root.display())))?;
        Ok(FileBlobs {
            root: Arc::new(root.to_path_buf()),
            dir_syncs: Arc::new(DirSyncs::default()),
            public_url: public_url.trim_end_matches('/').to_string(),
            signer,
        })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, BlobError>
    where
        T: Send + 'static,
        F: FnOnce(&Path, &DirSyncs) -> Result<T, BlobError> + Send + 'static,
    {
        let root = Arc::clone(&self.root);
        let dir_syncs = Arc::clone(&self.dir_syncs);
        tokio::task::spawn_blocking(move || f(&root, &dir_syncs))
            .await
            .map_err(|e| BlobError::Unavailable(format!("blob task failed: {e}")))?
    }
}

fn io(what: &str, e: std::io::Error) -> BlobError {
    BlobError::Unavailable(format!("{what}: {e}"))
}

/// Percent-encodes one key segment (see the module docs for why so strictly).
fn encode_segment(seg: &str) -> Vec<String> {
    let mut tokens = Vec::with_capacity(seg.len());
    for b in seg.bytes() {
        tokens.push(match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        });
    }
    // Chunks end on token boundaries so no escape is split across components.
    let mut chunks = vec![String::new()];
    for t in tokens {
        if chunks.last().is_some_and(|c| c.len() + t.len() > CHUNK) {
            chunks.push(String::new());
        }
        if let Some(c) = chunks.last_mut() {
            c.push_str(&t);
        }
    }
    chunks
}

/// Decodes a path component's payload; None if it is not one we wrote.
fn decode_component(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next()?;
            let lo = bytes.next()?;
            let hex = [hi, lo];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// The file holding `key` (which must be valid), relative to the root.
fn relative_path(key: &str) -> PathBuf {
    let mut path = PathBuf::new();
    let segments: Vec<&str> = key.split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        let chunks = encode_segment(seg);
        let end = chunks.len() - 1;
        for (j, chunk) in chunks.iter().enumerate() {
            let tag = match (j == end, i == last) {
                (false, _) => "c_",
                (true, false) => "d_",
                (true, true) => "f_",
            };
            path.push(format!("{tag}{chunk}"));
        }
    }
    path
}

/// Writes `body` durably to a fresh temp file in `dir`, then hands it to `publish` and makes
/// the directory durable; retries when a concurrent delete removed the directory in between.
/// The temp file is always removed.
fn write_via_temp<T>(
    dir_syncs: &DirSyncs,
    dir: &Path,
    body: &[u8],
    publish: impl Fn(&Path) -> std::io::Result<T>,
) -> Result<T, BlobError> {
    let mut last_err = None;
    for _ in 0..WRITE_ATTEMPTS {
        super::create_dir_durably(dir).map_err(|e| io("create directory", e))?;
        let tmp = dir.join(format!("t_{}", hex::encode(rand::random::<[u8; 12]>())));
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(body)?;
                f.sync_all()
            })
            .and_then(|()| publish(&tmp));
        let _ = std::fs::remove_file(&tmp);
        match result {
            Ok(v) => {
                // Also when `publish` found the name taken: that file may be another write's
                // whose rename is not durable yet, and "already there" is only true once it is.
                dir_syncs.after_change(dir).map_err(|e| io("write blob", e))?;
                return Ok(v);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => last_err = Some(e),
            Err(e) => return Err(io("write blob", e)),
        }
    }
    Err(io(
        "write blob",
        last_err.unwrap_or_else(|| std::io::Error::other("directory keeps vanishing")),
    ))
}

/// Whether a subtree whose keys all start with `cur` can hold keys matching the listing.
fn worth_visiting(cur: &[u8], prefix: &[u8], after: Option<&[u8]>) -> bool {
    if !(cur.starts_with(prefix) || prefix.starts_with(cur)) {
        return false;
    }
    // Every key under `cur` is <= `after` iff `cur` sorts below `after` without being a prefix
    // of it (the first difference then lies inside `cur`).
    match after {
        Some(a) => a.starts_with(cur) || cur > a,
        None => true,
    }
}

/// Collects into `out` the smallest [`PAGE`] keys under `dir` matching the listing.
fn walk(
    dir: &Path,
    cur: &[u8],
    prefix: &[u8],
    after: Option<&[u8]>,
    out: &mut BTreeSet<String>,
) -> Result<(), BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // Removed by a concurrent delete: it held nothing.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("list blobs", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io("list blobs", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // `get` rather than slicing: a stranger's file name may not split at byte 2.
        let (Some(tag), Some(payload)) = (name.get(..2), name.get(2..)) else {
            continue;
        };
        let Some(mut key) = decode_component(payload).map(|p| [cur, &p].concat()) else {
            continue;
        };
        match tag {
            "f_" => {
                let Ok(key) = String::from_utf8(key) else {
                    continue;
                };
                let in_range = after.is_none_or(|a| key.as_bytes() > a);
                if key.as_bytes().starts_with(prefix) && in_range {
                    out.insert(key);
                    if out.len() > PAGE {
                        out.pop_last();
                    }
                }
            }
            "c_" | "d_" => {
                if tag == "d_" {
                    key.push(b'/');
                }
                // Once the page is full, subtrees sorting after its last key cannot help.
                let beyond_page =
                    out.len() == PAGE && out.last().is_some_and(|l| key.as_slice() > l.as_bytes());
                if !beyond_page && worth_visiting(&key, prefix, after) {
                    walk(&entry.path(), &key, prefix, after, out)?;
                }
            }
            _ => {} // temp files and strangers
        }
    }
    Ok(())
}

/// Removes now-empty directories from `dir` up to (not including) `root`. Best effort: a
/// concurrent write may refill one, which is why writes retry on a vanished directory.
fn prune_empty_dirs(root: &Path, mut dir: &Path) {
    while dir != root && dir.starts_with(root) {
        if std::fs::remove_dir(dir).is_err() {
            return;
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return,
        }
    }
}

/// Percent-encodes a key for a URL path: unreserved characters and `/` stay as they are.
fn url_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The blob key of a presigned URL's path (`/_stackhouse/blobs/<percent-encoded key>`), or None
/// when the path is not one or does not decode to a valid key.
pub fn presigned_key_from_path(path: &str) -> Option<String> {
    let encoded = path.strip_prefix(PRESIGN_PATH_PREFIX)?;
    let key = String::from_utf8(decode_component(encoded)?).ok()?;
    validate_key(&key).ok()?;
    Some(key)
}

#[async_trait]
impl BlobStore for FileBlobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_key(key)?;
        let rel = relative_path(key);
        self.blocking(move |root, dir_syncs| {
            let path = root.join(rel);
            let dir = path.parent().unwrap_or(root);
            // rename replaces atomically: readers see the old file or the new one.
            write_via_temp(dir_syncs, dir, &body, |tmp| std::fs::rename(tmp, &path))
        })
        .await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
        validate_key(key)?;
        let rel = relative_path(key);
        self.blocking(move |root, dir_syncs| {
            let path = root.join(rel);
            let dir = path.parent().unwrap_or(root);
            // link fails if the name exists: an atomic create-if-absent of a complete file.
            write_via_temp(dir_syncs, dir, &body, |tmp| match std::fs::hard_link(tmp, &path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            })
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        validate_key(key)?;
        let rel = relative_path(key);
        self.blocking(move |root, _| match std::fs::read(root.join(rel)) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read blob", e)),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        let rel = relative_path(key);
        self.blocking(move |root, dir_syncs| {
            let path = root.join(rel);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io("delete blob", e)),
            }
            if let Some(dir) = path.parent() {
                dir_syncs.after_change(dir).map_err(|e| io("delete blob", e))?;
                prune_empty_dirs(root, dir);
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str, after: Option<String>) -> Result<BlobList, BlobError> {
        let prefix = prefix.to_string();
        self.blocking(move |root, _| {
            let mut out = BTreeSet::new();
            walk(root, b"", prefix.as_bytes(), after.as_deref().map(str::as_bytes), &mut out)?;
            let keys: Vec<String> = out.into_iter().collect();
            let next = if keys.len() == PAGE { keys.last().cloned() } else { None };
            Ok(BlobList { keys, next })
        })
        .await
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        response: ResponseHeaders<'_>,
    ) -> Result<String, BlobError> {
        validate_key(key)?;
        let expires = expiry(expires_in);
        let signature = hex::encode(self.signer.sign(key, expires, response));
        Ok(self.url(key, expires, overrides(response), &signature))
    }

    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        validate_key(key)?;
        let expires = expiry(expires_in);
        let signature = hex::encode(self.signer.sign_put(key, expires));
        Ok(self.url(key, expires, [(METHOD, "PUT")].into_iter(), &signature))
    }
}

impl FileBlobs {
    /// A presigned URL: the key's path under the public URL, then `expires`, the signed extra
    /// parameters and the signature.
    fn url<'a>(
        &self,
        key: &str,
        expires: i64,
        extra: impl Iterator<Item = (&'static str, &'a str)>,
        signature: &str,
    ) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("expires", &expires.to_string());
        for (name, value) in extra {
            query.append_pair(name, value);
        }
        query.append_pair("signature", signature);
        format!("{}{}{}?{}", self.public_url, PRESIGN_PATH_PREFIX, url_path(key), query.finish())
    }
}

/// When a URL valid for `expires_in` expires, in epoch seconds: rounded up, so that it lives at
/// least as long as asked.
fn expiry(expires_in: Duration) -> i64 {
    let secs = expires_in.as_secs() + u64::from(expires_in.subsec_nanos() > 0);
    now_secs().saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Query parameter of a URL that signs a PUT (absent: a GET, as URLs were before uploads).
const METHOD: &str = "method";

/// Query parameters of the response-header overrides (S3's names), in signing order.
const RESPONSE_CONTENT_ENCODING: &str = "response-content-encoding";
const RESPONSE_CONTENT_TYPE: &str = "response-content-type";

/// The overrides a URL carries, as (query parameter, value) pairs in signing order.
fn overrides<'a>(response: ResponseHeaders<'a>) -> impl Iterator<Item = (&'static str, &'a str)> {
    [
        (RESPONSE_CONTENT_ENCODING, response.content_encoding),
        (RESPONSE_CONTENT_TYPE, response.content_type),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
}

/// A presigned URL whose signature checked out: what to serve (or store) and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedGet {
    /// The blob key.
    pub key: String,
    /// The URL signs a PUT of the key (an upload), not a GET.
    pub put: bool,
    /// The `Content-Encoding` the response must carry, if the URL asks for one.
    pub content_encoding: Option<String>,
    /// The `Content-Type` the response must carry, if the URL asks for one.
    pub content_type: Option<String>,
}

/// Signs and checks presigned blob URLs: `signature = hex(HMAC-SHA256(secret, key + "\n" +
/// expires [+ "\n" + name + ":" + len(value) + ":" + value for each response override]))`, the
/// secret being `presign.key` in the data directory.
pub struct PresignVerifier {
    secret: [u8; 32],
}

impl std::fmt::Debug for PresignVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresignVerifier").finish_non_exhaustive()
    }
}

impl PresignVerifier {
    /// Loads the secret at `path`, creating it (32 random bytes, mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, AdapterError> {
        let secret = load_or_create_secret(path).map_err(|e| AdapterError::new("blobs", e))?;
        Ok(PresignVerifier { secret })
    }

    /// A verifier over a given secret (tests).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        PresignVerifier { secret }
    }

    fn mac(&self, key: &str, expires: i64, response: ResponseHeaders<'_>) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; 32 bytes can never be rejected.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        // Length-prefixed, so no value can pass for another split of the same bytes.
        for (name, value) in overrides(response) {
            mac.update(format!("\n{name}:{}:", value.len()).as_bytes());
            mac.update(value.as_bytes());
        }
        mac
    }

    fn sign(&self, key: &str, expires: i64, response: ResponseHeaders<'_>) -> Vec<u8> {
        self.mac(key, expires, response).finalize().into_bytes().to_vec()
    }

    /// A PUT's MAC: a GET's with no overrides, then the method, length-prefixed like them, so
    /// a GET URL can never be turned into an upload (nor the reverse).
    fn mac_put(&self, key: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = self.mac(key, expires, ResponseHeaders::NONE);
        mac.update(format!("\n{METHOD}:3:PUT").as_bytes());
        mac
    }

    fn sign_put(&self, key: &str, expires: i64) -> Vec<u8> {
        self.mac_put(key, expires).finalize().into_bytes().to_vec()
    }

    /// Whether `signature_hex` signs `key` (without response overrides) until `expires` (epoch
    /// seconds) and `now` is not past `expires`. The comparison is constant-time.
    pub fn verify(&self, key: &str, expires: i64, signature_hex: &str, now: i64) -> bool {
        self.verify_with(key, expires, ResponseHeaders::NONE, signature_hex, now)
    }

    fn verify_with(
        &self,
        key: &str,
        expires: i64,
        response: ResponseHeaders<'_>,
        signature_hex: &str,
        now: i64,
    ) -> bool {
        if now > expires {
            return false;
        }
        let Ok(signature) = hex::decode(signature_hex) else {
            return false;
        };
        self.mac(key, expires, response).verify_slice(&signature).is_ok()
    }

    /// Checks a presigned URL's path and query (as the server received them) at time `now`:
    /// the key, expiry and response overrides must all be the signed ones. None when the URL
    /// is not a valid, unexpired presigned URL (answer 403).
    pub fn check_url(&self, path: &str, query: Option<&str>, now: i64) -> Option<PresignedGet> {
        let key = presigned_key_from_path(path)?;
        let mut params: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            // A repeated parameter is ambiguous: refuse rather than pick one.
            if params.insert(name.into_owned(), value.into_owned()).is_some() {
                return None;
            }
        }
        let expires: i64 = params.get("expires")?.parse().ok()?;
        let signature = params.get("signature")?;
        match params.get(METHOD).map(String::as_str) {
            None => {}
            Some("PUT") => {
                // An upload URL carries no response overrides.
                if now > expires
                    || params.contains_key(RESPONSE_CONTENT_ENCODING)
                    || params.contains_key(RESPONSE_CONTENT_TYPE)
                {
                    return None;
                }
                let signature = hex::decode(signature).ok()?;
                self.mac_put(&key, expires).verify_slice(&signature).ok()?;
                return Some(PresignedGet {
                    key,
                    put: true,
                    content_encoding: None,
                    content_type: None,
                });
            }
            Some(_) => return None,
        }
        let content_encoding = params.get(RESPONSE_CONTENT_ENCODING).cloned();
        let content_type = params.get(RESPONSE_CONTENT_TYPE).cloned();
        let response = ResponseHeaders {
            content_encoding: content_encoding.as_deref(),
            content_type: content_type.as_deref(),
        };
        if !self.verify_with(&key, expires, response, signature, now) {
            return None;
        }
        Some(PresignedGet { key, put: false, content_encoding, content_type })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_file_and_directory_keys_apart() {
        assert_eq!(relative_path("a"), PathBuf::from("f_a"));
        assert_eq!(relative_path("a/b"), PathBuf::from("d_a/f_b"));
        assert_eq!(relative_path("A b%"), PathBuf::from("f_%41%20b%25"));
        let long = "x".repeat(400);
        let p = relative_path(&format!("{long}/y"));
        let parts: Vec<_> = p.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert!(parts[0].starts_with("c_") && parts[2].starts_with("d_") && parts[3] == "f_y");
        assert!(parts.iter().all(|c| c.len() <= CHUNK + 2));
    }

    #[test]
    fn presigned_paths_round_trip() {
        let key = "artifacts/sha256/ab c?#%Ü";
        let path = format!("{PRESIGN_PATH_PREFIX}{}", url_path(key));
        assert_eq!(presigned_key_from_path(&path).as_deref(), Some(key));
        assert_eq!(presigned_key_from_path("/other/x"), None);
        assert_eq!(presigned_key_from_path(&format!("{PRESIGN_PATH_PREFIX}a/../b")), None);
    }

    #[test]
    fn verifier_checks_key_expiry_and_signature() {
        let v = PresignVerifier::from_secret([7; 32]);
        let sig = hex::encode(v.sign("k", 100, ResponseHeaders::NONE));
        assert!(v.verify("k", 100, &sig, 100));
        assert!(!v.verify("k", 100, &sig, 101));
        assert!(!v.verify("k2", 100, &sig, 50));
        assert!(!v.verify("k", 101, &sig, 50));
        assert!(!v.verify("k", 100, "zz", 50));
        assert!(!PresignVerifier::from_secret([8; 32]).verify("k", 100, &sig, 50));
    }

    #[tokio::test]
    async fn presigned_urls_sign_their_response_headers() {
        let dir = std::env::temp_dir()
            .join(format!("stackhouse-presign-{}", hex::encode(rand::random::<[u8; 8]>())));
        let verifier = Arc::new(PresignVerifier::from_secret([9; 32]));
        let blobs = FileBlobs::open(&dir, "http://h:1/", Arc::clone(&verifier)).expect("open");
        let url = blobs
            .presign_get("a b/c.json.gz", Duration::from_secs(60), ResponseHeaders::GZIP_JSON)
            .await
            .expect("presign");
        let _ = std::fs::remove_dir_all(&dir);
        let rest = url.strip_prefix("http://h:1").expect("public url");
        let (path, query) = rest.split_once('?').expect("query");
        let now = now_secs();
        let got = verifier.check_url(path, Some(query), now).expect("valid URL");
        assert_eq!(got.key, "a b/c.json.gz");
        assert_eq!(got.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
        // Dropping or changing an override breaks the signature; so does repeating one.
        let dropped = query.replace("response-content-encoding=gzip&", "");
        assert_ne!(dropped, query);
        assert_eq!(verifier.check_url(path, Some(&dropped), now), None);
        let changed = query.replace("=gzip", "=br");
        assert_eq!(verifier.check_url(path, Some(&changed), now), None);
        let repeated = format!("{query}&response-content-encoding=gzip");
        assert_eq!(verifier.check_url(path, Some(&repeated), now), None);
        assert_eq!(verifier.check_url(path, Some(query), now + 61), None, "expired");
        // URLs without overrides keep the original signature scheme.
        let plain = blobs
            .presign_get("k", Duration::from_secs(60), ResponseHeaders::NONE)
            .await
            .expect("presign");
        let (path, query) =
            plain.strip_prefix("http://h:1").and_then(|r| r.split_once('?')).expect("url");
        let got = verifier.check_url(path, Some(query), now).expect("valid URL");
        assert_eq!((got.content_encoding, got.content_type), (None, None));
    }
    proptest::proptest! {
        /// Whatever path and query arrive, checking never panics, and accepts only what was
        /// signed: the signed key, for the signed method, unexpired.
        #[test]
        fn presigned_urls_accept_only_what_was_signed(
            key in "[a-z0-9/_. -]{1,40}",
            put in proptest::prelude::any::<bool>(),
            junk in "[ -~]{0,80}",
            flip in 0usize..200,
        ) {
            let verifier = PresignVerifier::from_secret([7; 32]);
            let expires = 2_000;
            let signature = if put {
                hex::encode(verifier.sign_put(&key, expires))
            } else {
                hex::encode(verifier.sign(&key, expires, ResponseHeaders::NONE))
            };
            let path = format!("{PRESIGN_PATH_PREFIX}{}", url_path(&key));
            let method = if put { "&method=PUT" } else { "" };
            let query = format!("expires={expires}{method}&signature={signature}");
            if validate_key(&key).is_ok() {
                let got = verifier.check_url(&path, Some(&query), 1_000);
                proptest::prop_assert_eq!(got.as_ref().map(|g| (g.key.as_str(), g.put)), Some((key.as_str(), put)));
                proptest::prop_assert!(verifier.check_url(&path, Some(&query), 2_001).is_none());
            }
            // Any change to the query is refused (or is the same URL).
            let mut bytes = query.clone().into_bytes();
            if let Some(b) = bytes.get_mut(flip) {
                *b = if *b == b'a' { b'b' } else { b'a' };
            }
            let changed = String::from_utf8_lossy(&bytes).into_owned();
            if changed != query {
                let got = verifier.check_url(&path, Some(&changed), 1_000);
                proptest::prop_assert!(got.is_none() || got.map(|g| g.key) == Some(key.clone()));
            }
            let _ = verifier.check_url(&junk, Some(&junk), 1_000);
            let _ = verifier.check_url(&path, Some(&junk), 1_000);
        }
    }
}
