//! Artifacts (issue 20): immutable uploads — policy pack and template archives, package schemas
//! and readmes — stored once by
//! content and removed when nothing refers to them any more.
//!
//! * An upload goes from the client straight to the blob store through a presigned PUT URL,
//!   under a scratch key `uploads/<org>/<id>`. An upload item (`ARTUPLOAD` /
//!   `<expires>#<org>#<id>`) lets [`collect`] remove it when it is never completed.
//! * [`store`] reads what arrived, checks its size (and SHA-256 when the client named one) and
//!   creates `artifacts/sha256/<hex>` unless that exists: the same archive published twice is
//!   stored once.
//! * A head item per stored blob (`ARTBLOB#<hex>` / `HEAD`) counts its references. An owner
//!   (a policy pack version) takes a reference with [`reference_ops`] in the same transaction
//!   that records it, and gives it back with [`release_ops`]; both are conditioned on the
//!   head's generation, so every change of a head is serialised.
//! * [`collect`] removes a blob whose head has counted no reference for the grace period: it
//!   first marks the head `collecting` (only possible while the count is 0), then deletes the
//!   blob, then the head. A reference is only taken on a `live` head, and the owner makes sure
//!   the blob exists after its transaction ([`ensure_stored`]), so no blob is deleted that a
//!   concurrent owner just referenced.
//! * Per organization, a usage item counts versions and bytes (each version counted, even when
//!   its blob is shared), and references are refused past the quota.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::item_keys;
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, SortKey, TransactOp, Value};
use crate::service::optimistic::{retry_on_conflict, written};

/// Blob key prefix of stored artifacts, by SHA-256.
pub const STORED_PREFIX: &str = "artifacts/sha256/";
/// Blob key prefix of uploads not yet completed.
pub const UPLOAD_PREFIX: &str = "uploads/";
/// How long an upload URL stays valid.
pub const UPLOAD_URL_SECONDS: u64 = 3600;
/// How long a download URL (a required policy pack's location) stays valid.
pub const DOWNLOAD_URL_SECONDS: u64 = 3600;
/// A `collecting` mark older than this is left over by a collector that stopped half-way; a
/// reference finishes the collection itself instead of waiting for the next run.
const STALE_COLLECTING_SECONDS: i64 = 300;

const UPLOADS_PK: &str = "ARTUPLOAD";
const HEAD_SK: &str = "HEAD";
const USAGE_SK: &str = "ARTUSAGE";
const LIVE: &str = "live";
const COLLECTING: &str = "collecting";

fn head_pk(sha: &str) -> String {
    format!("ARTBLOB#{sha}")
}

/// The blob key of a stored artifact.
pub fn stored_key(sha: &str) -> String {
    format!("{STORED_PREFIX}{sha}")
}

/// An upload handed out: where the client PUTs, and the scratch key it lands under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub url: String,
}

/// Starts an upload for `org`: a scratch key, its presigned PUT URL, and the record that lets
/// the collector remove it if it is never completed.
pub async fn begin(app: &App, org: &str) -> Result<Upload> {
    let id = super::new_id();
    let expires = app.clock.now() + UPLOAD_URL_SECONDS as i64;
    let key = format!("{UPLOAD_PREFIX}{org}/{expires:012}-{id}");
    let item =
        Item::new(UPLOADS_PK, upload_sk(expires, org, &id)).with("key", Value::S(key.clone()));
    app.ports.meta.put(item, None).await?;
    let url = app
        .ports
        .blobs
        .presign_put(&key, std::time::Duration::from_secs(UPLOAD_URL_SECONDS))
        .await?;
    Ok(Upload { key, url })
}

fn upload_sk(expires: i64, org: &str, id: &str) -> String {
    format!("{expires:012}#{org}#{id}")
}

/// The upload item's sort key of an upload's scratch key (`uploads/<org>/<expires>-<id>`).
fn upload_record(key: &str) -> Option<String> {
    let (org, rest) = key.strip_prefix(UPLOAD_PREFIX)?.split_once('/')?;
    let (expires, id) = rest.split_once('-')?;
    Some(upload_sk(expires.parse().ok()?, org, id))
}

/// Removes an upload and its record: it was stored by content, or will never be.
pub async fn discard_upload(app: &App, upload_key: &str) -> Result<()> {
    app.ports.blobs.delete(upload_key).await?;
    if let Some(sk) = upload_record(upload_key) {
        app.ports.meta.delete(UPLOADS_PK, &sk, None).await?;
    }
    Ok(())
}

/// What the client says it uploaded, when it says (the Pulumi CLI does not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expect<'a> {
    pub size: Option<u64>,
    /// Lower-case hex SHA-256.
    pub sha256: Option<&'a str>,
}

/// An artifact stored by content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: i64,
    /// The bytes, kept to put them back should a collector have raced the reference.
    pub bytes: Bytes,
}

/// Reads the upload at `upload_key`, checks it against the limit and `expect`, and stores it
/// by content (once). Nothing is referenced yet: an unreferenced blob is collected after the
/// grace period. 400 when nothing (or something else) arrived, 413 when it is too large.
pub async fn store(app: &App, upload_key: &str, expect: Expect<'_>) -> Result<Stored> {
    let read = read_upload(app, upload_key, expect).await?;
    keep(app, &read).await?;
    Ok(read)
}

/// Stores what [`read_upload`] read, by content (once): after the owner has checked it, so
/// that nothing it refuses is kept.
pub async fn keep(app: &App, read: &Stored) -> Result<()> {
    app.ports.blobs.put_if_absent(&stored_key(&read.sha256), read.bytes.clone()).await?;
    Ok(())
}

/// Reads the upload at `upload_key` and checks it against the limit and `expect` (see
/// [`store`]), storing nothing.
pub async fn read_upload(app: &App, upload_key: &str, expect: Expect<'_>) -> Result<Stored> {
    let Some(bytes) = app.ports.blobs.get(upload_key).await? else {
        return Err(Error::BadRequest(
            "nothing was uploaded to the upload URL (or the upload expired); publish again".into(),
        ));
    };
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(Error::BadRequest("the upload is empty".into()));
    }
    if size > app.settings.max_artifact_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "the upload has {size} bytes, over the limit of {}",
            app.settings.max_artifact_bytes
        )));
    }
    if let Some(want) = expect.size.filter(|want| *want != size) {
        return Err(Error::BadRequest(format!("the upload has {size} bytes, not {want}")));
    }
    let stored = Stored::of(bytes);
    if let Some(want) = expect.sha256.filter(|want| !want.eq_ignore_ascii_case(&stored.sha256)) {
        return Err(Error::BadRequest(format!(
            "the upload's SHA-256 is {}, not {want}",
            stored.sha256
        )));
    }
    Ok(stored)
}

impl Stored {
    /// `bytes` as an artifact: its hash and size (nothing is written).
    pub fn of(bytes: Bytes) -> Stored {
        Stored { sha256: hex::encode(Sha256::digest(&bytes)), size: bytes.len() as i64, bytes }
    }
}

/// The bytes of the stored artifact `sha` (404 when it is gone).
pub async fn read_stored(app: &App, sha: &str) -> Result<Bytes> {
    app.ports
        .blobs
        .get(&stored_key(sha))
        .await?
        .ok_or_else(|| Error::NotFound(format!("artifact {sha} is no longer stored")))
}

/// A blob's head as read: its reference count and generation (None: no head yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    refs: i64,
    gen: i64,
    collecting: bool,
    changed: i64,
}

async fn read_head(meta: &dyn MetadataStore, sha: &str) -> Result<Option<Head>> {
    Ok(meta.get(&head_pk(sha), HEAD_SK).await?.map(|item| Head {
        refs: item.n("refs").unwrap_or(0),
        gen: item.n("gen").unwrap_or(0),
        collecting: item.s("state") == Some(COLLECTING),
        changed: item.n("changed").unwrap_or(0),
    }))
}

fn head_item(sha: &str, refs: i64, gen: i64, state: &str, changed: i64) -> Item {
    Item::new(head_pk(sha), HEAD_SK)
        .with("refs", Value::N(refs))
        .with("gen", Value::N(gen))
        .with("state", Value::S(state.into()))
        .with("changed", Value::N(changed))
}

/// The head written unless somebody changed it since `read` (absent stays absent).
fn head_condition(read: Option<Head>) -> Condition {
    match read {
        None => Condition::NotExists,
        Some(h) => Condition::Equals("gen".into(), Value::N(h.gen)),
    }
}

/// The organization's artifact usage as read (count, bytes, generation; None: none yet).
async fn read_usage(meta: &dyn MetadataStore, org: &str) -> Result<Option<(i64, i64, i64)>> {
    Ok(meta.get(&item_keys::org_pk(org), USAGE_SK).await?.map(|item| {
        (item.n("count").unwrap_or(0), item.n("bytes").unwrap_or(0), item.n("gen").unwrap_or(0))
    }))
}

fn usage_op(org: &str, read: Option<(i64, i64, i64)>, count: i64, bytes: i64) -> TransactOp {
    let gen = read.map(|(_, _, g)| g);
    let item = Item::new(item_keys::org_pk(org), USAGE_SK)
        .with("count", Value::N(count.max(0)))
        .with("bytes", Value::N(bytes.max(0)))
        .with("gen", Value::N(gen.unwrap_or(0) + 1));
    let condition = match gen {
        None => Condition::NotExists,
        Some(g) => Condition::Equals("gen".into(), Value::N(g)),
    };
    TransactOp::Put(item, Some(condition))
}

/// Refuses a new version of `size` bytes past the organization's quota (409).
pub async fn check_quota(app: &App, org: &str, size: i64) -> Result<()> {
    let (count, bytes, _) = read_usage(app.ports.meta.as_ref(), org).await?.unwrap_or((0, 0, 0));
    quota_allows(app, org, count, bytes, size)
}

fn quota_allows(app: &App, org: &str, count: i64, bytes: i64, size: i64) -> Result<()> {
    let s = &app.settings;
    if count + 1 > s.artifact_quota_count {
        return Err(Error::Conflict(format!(
            "organization {org} holds {count} artifact versions, its quota is {}; delete some first",
            s.artifact_quota_count
        )));
    }
    if bytes.saturating_add(size) > s.artifact_quota_bytes {
        return Err(Error::Conflict(format!(
            "organization {org} holds {bytes} artifact bytes; {size} more would pass its quota of {}",
            s.artifact_quota_bytes
        )));
    }
    Ok(())
}

/// What taking a reference adds to the owner's transaction.
#[derive(Debug)]
pub struct Reference {
    /// The head's count up (created when absent) and the organization's usage, both
    /// conditioned on what was read.
    pub ops: Vec<TransactOp>,
    /// The head already counted a reference when read: no collector can have removed the blob
    /// since it was stored, so [`ensure_stored`] need not put it again.
    pub protected: bool,
}

/// The distinct archives of `items` (SHA-256, size), each with how many times it appears.
fn distinct<'a>(items: impl Iterator<Item = (&'a str, i64)>) -> Vec<(&'a str, i64, i64)> {
    let mut out: Vec<(&str, i64, i64)> = Vec::new();
    for (sha, size) in items {
        match out.iter_mut().find(|(s, _, _)| *s == sha) {
            Some(found) => found.2 += 1,
            None => out.push((sha, size, 1)),
        }
    }
    out
}

/// What the owner's transaction must also write to take a reference on each of `stored` (the
/// archives of one version: a pack's, or a package's schema and readme) for `org`. The
/// version counts once against the quota, its archives' sizes all. 409 past the quota;
/// `Ok(None)` while a collector holds a head (the caller retries after a moment).
pub async fn reference_ops(app: &App, org: &str, stored: &[&Stored]) -> Result<Option<Reference>> {
    let meta = app.ports.meta.as_ref();
    let now = app.clock.now();
    let mut ops = Vec::with_capacity(stored.len() + 1);
    let mut protected = true;
    for (sha, _, times) in distinct(stored.iter().map(|s| (s.sha256.as_str(), s.size))) {
        let head = read_head(meta, sha).await?;
        if let Some(h) = head.filter(|h| h.collecting) {
            if now - h.changed >= STALE_COLLECTING_SECONDS {
                finish_collection(app, sha, h).await?;
            }
            return Ok(None);
        }
        let (refs, gen) = head.map(|h| (h.refs, h.gen)).unwrap_or((0, 0));
        protected &= refs > 0;
        ops.push(TransactOp::Put(
            head_item(sha, refs + times, gen + 1, LIVE, now),
            Some(head_condition(head)),
        ));
    }
    let size: i64 = stored.iter().map(|s| s.size).sum();
    let usage = read_usage(meta, org).await?;
    let (count, bytes, _) = usage.unwrap_or((0, 0, 0));
    quota_allows(app, org, count, bytes, size)?;
    ops.push(usage_op(org, usage, count + 1, bytes + size));
    Ok(Some(Reference { ops, protected }))
}

/// After the owner's transaction took its references: puts the bytes back should a collector
/// have deleted a blob between [`store`] and the transaction (it cannot any more: the heads
/// now count a reference) unless every head was `protected` already, and removes the uploads.
pub async fn ensure_stored(
    app: &App,
    stored: &[&Stored],
    uploads: &[&str],
    protected: bool,
) -> Result<()> {
    if !protected {
        for s in stored {
            app.ports.blobs.put_if_absent(&stored_key(&s.sha256), s.bytes.clone()).await?;
        }
    }
    for upload in uploads {
        discard_upload(app, upload).await?;
    }
    Ok(())
}

/// What the owner's transaction must also write to give back its references (`references`:
/// each archive's SHA-256 and size, of one version of `org` removed): the counts down, the
/// time they changed, the usage.
pub async fn release_ops(
    app: &App,
    org: &str,
    references: &[(&str, i64)],
) -> Result<Vec<TransactOp>> {
    let meta = app.ports.meta.as_ref();
    let mut ops = Vec::with_capacity(references.len() + 1);
    for (sha, _, times) in distinct(references.iter().copied()) {
        if let Some(h) = read_head(meta, sha).await? {
            let state = if h.collecting { COLLECTING } else { LIVE };
            ops.push(TransactOp::Put(
                head_item(sha, (h.refs - times).max(0), h.gen + 1, state, app.clock.now()),
                Some(head_condition(Some(h))),
            ));
        }
    }
    let size: i64 = references.iter().map(|(_, size)| size).sum();
    let usage = read_usage(meta, org).await?;
    let (count, bytes, _) = usage.unwrap_or((0, 0, 0));
    ops.push(usage_op(org, usage, count - 1, bytes - size));
    Ok(ops)
}

/// Deletes an owner's item (`pk`/`sk`, e.g. a pack version) and, in the same transaction, gives
/// back the references it holds (`references`: each archive's SHA-256 and size, once complete);
/// then discards its uploads if it never completed. A retried delete that finds the item gone
/// succeeds; `what` names it in a 409 when every try lost a race.
pub async fn remove_owner(
    app: &App,
    org: &str,
    (pk, sk): (&str, &str),
    references: &[(&str, i64)],
    uploads: &[&str],
    what: &str,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let outcome = retry_on_conflict!(8, async {
        let mut ops = if references.is_empty() {
            Vec::new()
        } else {
            release_ops(app, org, references).await?
        };
        ops.push(TransactOp::Delete {
            pk: pk.to_string(),
            sk: sk.to_string(),
            condition: Some(Condition::Exists),
        });
        written(meta.transact(ops).await, ())
    })?;
    if outcome.is_none() && meta.get(pk, sk).await?.is_some() {
        return Err(Error::Conflict(format!("the {what} changed concurrently, try again")));
    }
    for upload in uploads {
        discard_upload(app, upload).await?;
    }
    Ok(())
}

/// A presigned GET of a stored artifact, served as it was uploaded.
pub async fn download_url(app: &App, sha: &str) -> Result<String> {
    Ok(app
        .ports
        .blobs
        .presign_get(
            &stored_key(sha),
            std::time::Duration::from_secs(DOWNLOAD_URL_SECONDS),
            crate::ports::blob::ResponseHeaders::NONE,
        )
        .await?)
}

/// What one collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Collected {
    /// Stored artifacts no reference counted for the grace period.
    pub artifacts: u64,
    /// Uploads never completed.
    pub uploads: u64,
}

/// Removes the uploads that expired more than `grace` seconds ago and the stored artifacts
/// that have had no reference for `grace` seconds (a blob without a head — left by an owner
/// whose transaction failed — gets one now and is collected a grace period later).
pub async fn collect(app: &App, now: i64, grace: i64) -> Result<Collected> {
    let meta = app.ports.meta.as_ref();
    let mut out = Collected::default();
    // Abandoned uploads, oldest first.
    let until = format!("{:012}~", (now - grace).max(0));
    let mut start = None;
    loop {
        let mut q = Query::prefix(UPLOADS_PK, "", 500);
        q.sk = SortKey::Between(String::new(), until.clone());
        q.after = start.take();
        let page = meta.query(q).await?;
        for item in &page.items {
            if let Some(key) = item.s("key") {
                app.ports.blobs.delete(key).await?;
            }
            meta.delete(&item.pk, &item.sk, None).await?;
            out.uploads += 1;
        }
        match page.next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    // Stored artifacts.
    let mut after = None;
    loop {
        let list = app.ports.blobs.list(STORED_PREFIX, after.take()).await?;
        for key in &list.keys {
            let Some(sha) = key.strip_prefix(STORED_PREFIX) else { continue };
            match read_head(meta, sha).await? {
                None => {
                    let item = head_item(sha, 0, 1, LIVE, now);
                    // Lost to an owner taking its first reference: nothing to collect.
                    let _ = meta.put(item, Some(Condition::NotExists)).await;
                }
                Some(h) if h.collecting => {
                    finish_collection(app, sha, h).await?;
                    out.artifacts += 1;
                }
                Some(h) if h.refs == 0 && now - h.changed >= grace => {
                    let mark = head_item(sha, 0, h.gen + 1, COLLECTING, now);
                    let cond = Condition::Equals("gen".into(), Value::N(h.gen))
                        .and(Condition::Equals("refs".into(), Value::N(0)));
                    match meta.put(mark, Some(cond)).await {
                        Ok(()) => {
                            let marked = Head { gen: h.gen + 1, collecting: true, ..h };
                            finish_collection(app, sha, marked).await?;
                            out.artifacts += 1;
                        }
                        // Referenced meanwhile: it stays.
                        Err(crate::ports::MetaError::ConditionFailed) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(_) => {}
            }
        }
        match list.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(out)
}

/// Deletes a blob whose head is marked `collecting`, then the head (only if still so).
async fn finish_collection(app: &App, sha: &str, head: Head) -> Result<()> {
    app.ports.blobs.delete(&stored_key(sha)).await?;
    let cond = Condition::Equals("gen".into(), Value::N(head.gen))
        .and(Condition::Equals("state".into(), Value::S(COLLECTING.into())));
    match app.ports.meta.delete(&head_pk(sha), HEAD_SK, Some(cond)).await {
        Ok(()) | Err(crate::ports::MetaError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The organization's artifact usage: versions and bytes counted against its quota.
pub async fn usage(meta: &dyn MetadataStore, org: &str) -> Result<(i64, i64)> {
    Ok(read_usage(meta, org).await?.map(|(c, b, _)| (c, b)).unwrap_or((0, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_name_their_records() {
        let key = format!("{UPLOAD_PREFIX}acme/{:012}-abc", 42);
        assert_eq!(upload_record(&key), Some(upload_sk(42, "acme", "abc")));
        assert_eq!(upload_record("uploads/acme/nodash"), None);
        assert_eq!(upload_record("other/acme/1-x"), None);
    }

    #[test]
    fn upload_items_sort_by_expiry() {
        assert!(upload_sk(99, "b", "x") < upload_sk(100, "a", "x"));
        assert!(upload_sk(100, "zzz", "y") < format!("{:012}~", 100));
    }
}
