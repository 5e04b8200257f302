//! Writing an organization to an [`Archive`] (the format and its guarantees are in the module
//! docs of [`super`]).

use std::collections::BTreeSet;

use base64::Engine;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::archive::Archive;
use super::format::{self, b64, FileEntry, Keys, Manifest, Record, Records, SealedKey};
use super::seal::{Passphrase, Sealer, DEFAULT_ITERATIONS};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::OrgName;
use crate::ports::{EncryptionContext, Item, Query, SortKey};
use crate::service::access::query_all;
use crate::service::item_keys;
use crate::service::secrets::CONTEXT_KEY;
use crate::service::stacks::Stack;

/// What an export needs besides the organization.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Seals the data keys.
    pub passphrase: Passphrase,
    /// PBKDF2 iterations ([`DEFAULT_ITERATIONS`] unless a test wants it fast).
    pub kdf_iterations: u32,
}

impl ExportOptions {
    /// Options with the default key stretching.
    pub fn new(passphrase: Passphrase) -> ExportOptions {
        ExportOptions { passphrase, kdf_iterations: DEFAULT_ITERATIONS }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Stacks.
    pub stacks: usize,
    /// Stack versions (deployments) over all stacks.
    pub versions: usize,
    /// Files, the manifest included.
    pub files: usize,
    /// Bytes of all files.
    pub bytes: u64,
    /// The export's id.
    pub export_id: String,
}

/// Files written so far, for the manifest.
struct Writer<'a> {
    archive: &'a dyn Archive,
    files: Vec<FileEntry>,
}

impl Writer<'_> {
    async fn write(&mut self, path: &str, body: Vec<u8>) -> Result<()> {
        self.files.push(FileEntry::of(path, &body));
        self.archive.write(path, Bytes::from(body)).await
    }

    async fn records(&mut self, path: &str, items: &[Item]) -> Result<()> {
        let records = Records { records: items.iter().map(Record::of).collect() };
        self.write(path, format::to_json(&records)?).await
    }
}

async fn partition(app: &App, pk: &str, sk: SortKey) -> Result<Vec<Item>> {
    let query = Query { pk: pk.to_string(), sk, ascending: true, limit: 1000, after: None };
    query_all(app.ports.meta.as_ref(), query).await
}

async fn prefixed(app: &App, pk: &str, prefix: &str) -> Result<Vec<Item>> {
    partition(app, pk, SortKey::BeginsWith(prefix.to_string())).await
}

/// Writes organization `org` to `to`. Refuses an archive that holds an export already. Runs
/// beside updates: each stack is taken at the version its stack item names when read.
pub async fn export(
    app: &App,
    org: &OrgName,
    to: &dyn Archive,
    opts: &ExportOptions,
) -> Result<ExportSummary> {
    let org = org.as_str();
    if to.read(format::MANIFEST).await?.is_some() {
        return Err(Error::Conflict(format!(
            "{} holds an export already; choose an empty place",
            to.location()
        )));
    }
    let meta = app.ports.meta.as_ref();
    if meta.get(&item_keys::org_pk(org), item_keys::ORG_SK).await?.is_none() {
        return Err(Error::NotFound(format!("organization '{org}' not found")));
    }
    let export_id = crate::service::new_id();
    let exported_at = app.clock.now();
    let (sealer, sealing) = Sealer::create(&opts.passphrase, opts.kdf_iterations, &export_id)?;
    let mut w = Writer { archive: to, files: Vec::new() };

    let org_items = partition(app, &item_keys::org_pk(org), SortKey::All).await?;
    let (stack_items, org_items): (Vec<Item>, Vec<Item>) =
        org_items.into_iter().partition(|i| i.sk.starts_with(item_keys::STACK_PREFIX));
    // An import marker of our own making is never part of an organization.
    let org_items: Vec<Item> = org_items.into_iter().filter(|i| i.sk != IMPORT_SK).collect();

    let mut key_ids = BTreeSet::new();
    let mut entries = Vec::new();
    let mut versions_total = 0;
    // Stacks concurrently (each one's reads are in order, which is what consistency needs), in
    // the organization's order so that two exports of the same data list the same.
    let mut stacks = futures::stream::iter(&stack_items)
        .map(|item| export_stack(app, item, to))
        .buffered(PARALLEL_STACKS);
    while let Some((entry, files)) = stacks.try_next().await? {
        key_ids.insert(entry.id.clone());
        versions_total += entry.versions.len();
        entries.push(entry);
        w.files.extend(files);
    }

    // Tokens: the organization's and its teams' listings, and each member's personal ones.
    let mut token_hashes = BTreeSet::new();
    for i in &org_items {
        if i.sk.starts_with(item_keys::OWNER_TOKEN_PREFIX) || i.sk.starts_with("TEAMTOKEN#") {
            token_hashes.extend(i.s("hash").map(str::to_string));
        }
    }
    let mut users = Vec::new();
    for member in org_items.iter().filter(|i| i.sk.starts_with("MEMBER#")) {
        let user = member.sk.trim_start_matches("MEMBER#");
        let pk = item_keys::user_pk(user);
        users.extend(meta.get(&pk, item_keys::USER_SK).await?);
        users.extend(meta.get(&pk, &item_keys::user_org_sk(org)).await?);
        users.extend(prefixed(app, &pk, &item_keys::user_teams_prefix(org)).await?);
        for listing in prefixed(app, &pk, item_keys::OWNER_TOKEN_PREFIX).await? {
            token_hashes.extend(listing.s("hash").map(str::to_string));
            users.push(listing);
        }
    }
    let mut tokens = Vec::new();
    for hash in &token_hashes {
        tokens.extend(meta.get(&item_keys::token_pk(hash), item_keys::TOKEN_SK).await?);
    }

    let hooks = partition(app, &item_keys::hooks_pk(org), SortKey::All).await?;
    key_ids.extend(hooks.iter().filter_map(|h| h.s("key_id")).map(str::to_string));
    let audit = partition(app, &item_keys::audit_pk(org), SortKey::All).await?;

    w.records(format::ORG_RECORDS, &org_items).await?;
    w.records(format::USER_RECORDS, &users).await?;
    w.records(format::TOKEN_RECORDS, &tokens).await?;
    w.records(format::WEBHOOK_RECORDS, &hooks).await?;
    w.records(format::AUDIT_RECORDS, &audit).await?;

    let mut keys = Keys::default();
    for key_id in key_ids {
        let Some(item) = meta.get(&item_keys::stack_id_pk(&key_id), item_keys::DATAKEY_SK).await?
        else {
            continue; // never encrypted anything
        };
        let wrapped = item.b("wrapped").ok_or_else(|| {
            Error::internal(format!("data key item of {key_id} lacks its wrapped key"))
        })?;
        let context = EncryptionContext::from([(CONTEXT_KEY.to_string(), key_id.clone())]);
        let plaintext = app.ports.keys.decrypt_data_key(wrapped, &context).await.map_err(|e| {
            Error::caused(format!("unwrapping the data key of {key_id} for the export"), e)
        })?;
        let sealed = sealer.seal(&format!("datakey:{key_id}"), &plaintext)?;
        keys.keys.push(SealedKey { key_id, sealed: b64().encode(sealed) });
    }
    let keys_count = keys.keys.len();
    w.write(format::KEYS, format::to_json(&keys)?).await?;

    let manifest = Manifest {
        format: format::FORMAT.into(),
        version: format::FORMAT_VERSION,
        org: org.to_string(),
        export_id: export_id.clone(),
        exported_at,
        sealing,
        stacks: entries,
        files: w.files,
        mac: String::new(),
    };
    let manifest = Manifest { mac: sealer.mac(&manifest.unsigned()?)?, ..manifest };
    let body = format::to_json(&manifest)?;
    let bytes = manifest.files.iter().map(|f| f.bytes).sum::<u64>() + body.len() as u64;
    let files = manifest.files.len() + 1;
    // Last: an export without its manifest is visibly unfinished.
    to.write(format::MANIFEST, Bytes::from(body)).await?;
    let what = format!(
        "exported {} stacks with {versions_total} versions and {} data keys (export {export_id})",
        manifest.stacks.len(),
        keys_count,
    );
    super::archive::audit(app, org, "org-export", to, what).await?;
    Ok(ExportSummary {
        stacks: manifest.stacks.len(),
        versions: versions_total,
        files,
        bytes,
        export_id,
    })
}

/// Stacks exported at once: enough to hide a store's latency, few enough for its rate limits.
const PARALLEL_STACKS: usize = 8;

/// Sort key of the marker an import under way keeps under the organization.
pub(crate) const IMPORT_SK: &str = "IMPORT";

/// Writes one stack at the version its item names: the item without any running update, the
/// history versions up to it with their deployments, and its grants.
async fn export_stack(
    app: &App,
    item: &Item,
    archive: &dyn Archive,
) -> Result<(format::StackEntry, Vec<FileEntry>)> {
    let mut w = Writer { archive, files: Vec::new() };
    let mut stack = Stack::from_item(item)?;
    // The running update is not part of a published version; the import's stack is idle.
    stack.active_update = None;
    let id = stack.id.to_string();
    let pk = item_keys::stack_id_pk(&id);
    let history = if stack.version >= 1 {
        let range =
            SortKey::Between(item_keys::version_sk(1), item_keys::version_sk(stack.version));
        partition(app, &pk, range).await?
    } else {
        Vec::new()
    };
    let mut records = vec![stack.to_item()?];
    let mut versions = Vec::new();
    for entry in history {
        let version = entry.n("version").ok_or_else(|| {
            Error::internal(format!("history item {} {} lacks its version", entry.pk, entry.sk))
        })?;
        if let Some(key) = entry.s("deployment_key") {
            let Some(body) = app.ports.blobs.get(key).await? else {
                if version == stack.version {
                    return Err(Error::internal(format!(
                        "the current deployment {key} of stack {id} is missing"
                    )));
                }
                // Retention removes the blob before the item: this version is being pruned.
                continue;
            };
            w.write(&format::version_blob(&id, version), body.to_vec()).await?;
        }
        versions.push(version);
        records.push(entry);
    }
    records.extend(prefixed(app, &pk, item_keys::STACK_TEAM_PREFIX).await?);
    records.extend(prefixed(app, &pk, item_keys::STACK_USER_PREFIX).await?);
    w.records(&format::stack_records(&id), &records).await?;
    let entry = format::StackEntry {
        id,
        project: stack.project,
        stack: stack.stack,
        version: stack.version,
        versions,
    };
    Ok((entry, w.files))
}
