//! Where an organization's index lives: its files in the blob store, a manifest naming them, and
//! a local copy in each process that searches or indexes (Lambda's `/tmp`, the emulator's temp
//! directory).
//!
//! - **Files** (`search/<org>/files/<upload id>-<name>`): tantivy's segment files, written once
//!   and never changed (a segment's deletions are a new file), so a process downloads each
//!   once, into a pool, and links it into the directory of every generation that uses it.
//!   Each upload has its own key: two runs racing from one generation may make files of the
//!   same name (a segment's deletions are named by the operation count they started from),
//!   and the loser must not overwrite what the winner published.
//! - **Manifest** (`search/<org>/manifests/<gen>-<upload id>.json`): the index's `meta.json`,
//!   the blob holding each of its files, and what each stack was when indexed (version and
//!   names), which is how an indexing run knows what changed. Its own key too, for the same
//!   reason: a loser's manifest never replaces the winner's.
//! - **Pointer** (item `SEARCH#<org>` / `INDEX`): the current generation and its manifest's id.
//!   A run publishes generation n+1 by a put conditioned on the pointer still naming n: files
//!   and manifest are written first, so a pointer never names what is not stored. A run that
//!   lost the race removes what it wrote; one that crashed leaves unreferenced blobs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::index::OrgIndex;
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, Value};

/// tantivy's list of segments.
const META_JSON: &str = "meta.json";

fn pointer_pk(org: &str) -> String {
    format!("SEARCH#{org}")
}
const POINTER_SK: &str = "INDEX";

fn file_key(org: &str, blob: &str) -> String {
    format!("search/{org}/files/{blob}")
}

fn manifest_key(org: &str, id: &str) -> String {
    format!("search/{org}/manifests/{id}.json")
}

fn failed(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("search index storage: {e}"))
}

/// What a stack was when its resources were indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indexed {
    /// Its version.
    pub version: i64,
    /// Its project.
    pub project: String,
    /// Its name.
    pub stack: String,
}

/// One generation of an organization's index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its id (`<generation>-<upload id>`; empty: the empty index, never published).
    pub id: String,
    /// tantivy's `meta.json` (None: the empty index).
    pub meta: Option<String>,
    /// The files it needs besides `meta.json`: tantivy's name to the blob holding it.
    pub files: BTreeMap<String, String>,
    /// Each indexed stack, by id.
    pub stacks: BTreeMap<String, Indexed>,
    /// The stacks (`org/project/stack`) each indexed stack's deployment references, by id;
    /// absent when none: how a stack's downstream references are found.
    #[serde(default)]
    pub references: BTreeMap<String, Vec<String>>,
    /// Blobs the previous generation used and this one does not: deleted when the next one is
    /// published, so a reader that found the previous generation can still fetch them.
    pub dropped: Vec<String>,
    /// The id of the manifest this one replaced, deleted when the next one is published.
    pub replaced: Option<String>,
}

/// The current generation (0: never indexed) and its manifest.
pub async fn load(app: &App, org: &str) -> Result<(i64, Manifest)> {
    match app.ports.meta.get(&pointer_pk(org), POINTER_SK).await? {
        Some(pointer) => manifest_of(app, org, &pointer).await,
        None => Ok((0, Manifest::default())),
    }
}

/// The generation a pointer item names, and its manifest.
async fn manifest_of(app: &App, org: &str, pointer: &Item) -> Result<(i64, Manifest)> {
    let generation = pointer.n("generation").unwrap_or(0);
    // A pointer without a manifest id predates per-upload keys: an empty index at that
    // generation, which the next indexing run rebuilds in full.
    let Some(id) = pointer.s("manifest") else {
        return Ok((generation, Manifest::default()));
    };
    let key = manifest_key(org, checked(id)?);
    let bytes = app
        .ports
        .blobs
        .get(&key)
        .await?
        .ok_or_else(|| Error::internal(format!("search manifest {key} is missing")))?;
    let manifest = serde_json::from_slice(&bytes).map_err(failed)?;
    Ok((generation, manifest))
}

/// This process's copies of organization indexes, and the open ones.
pub struct LocalIndexes {
    root: PathBuf,
    open: Mutex<HashMap<String, (i64, Arc<OrgIndex>)>>,
}

impl Default for LocalIndexes {
    fn default() -> Self {
        // One directory per app: two servers in one process (tests) never share files.
        let root =
            std::env::temp_dir().join(format!("stackhouse-search-{}", super::super::new_id()));
        LocalIndexes { root, open: Mutex::new(HashMap::new()) }
    }
}

impl LocalIndexes {
    fn org_dir(&self, org: &str) -> PathBuf {
        // Organization names are checked, but a path component should not depend on it.
        self.root.join(hex::encode(org))
    }

    fn cached(&self, org: &str, generation: i64) -> Option<Arc<OrgIndex>> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(org).filter(|(g, _)| *g == generation).map(|(_, index)| index.clone())
    }

    fn remember(&self, org: &str, generation: i64, index: Arc<OrgIndex>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(org.to_string(), (generation, index));
    }
}

/// The organization's current index, opened from this process's copy (fetching the files it
/// lacks); None when it was never indexed. A generation replaced while it was being fetched
/// may have lost files: then the current one is fetched instead.
pub async fn open(app: &App, org: &str) -> Result<Option<Arc<OrgIndex>>> {
    match open_current(app, org).await {
        Ok(index) => Ok(index),
        Err(e) => {
            tracing::info!(org, error = %e, "search index changed while opened; again");
            open_current(app, org).await
        }
    }
}

async fn open_current(app: &App, org: &str) -> Result<Option<Arc<OrgIndex>>> {
    let (generation, manifest) = match app.ports.meta.get(&pointer_pk(org), POINTER_SK).await? {
        None => return Ok(None),
        Some(item) => {
            let generation = item.n("generation").unwrap_or(0);
            if let Some(index) = app.search.cached(org, generation) {
                return Ok(Some(index));
            }
            // The manifest of the pointer just read (not a second read of the pointer).
            manifest_of(app, org, &item).await?
        }
    };
    let dir = app.search.org_dir(org).join(format!("g{generation:012}"));
    if !dir.join(META_JSON).exists() {
        let staging = app.search.org_dir(org).join(format!("s-{}", super::super::new_id()));
        checkout(app, org, &manifest, &staging).await?;
        // Another request may have made the same directory meanwhile: either copy serves.
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    let index = Arc::new(OrgIndex::in_dir(&dir)?);
    app.search.remember(org, generation, index.clone());
    forget_older(&app.search.org_dir(org), generation, &manifest);
    Ok(Some(index))
}

/// Removes this process's copies of older generations and pooled files the current one does
/// not use. Searches still running on an older copy keep reading it: its files are memory
/// mapped, and unlinking a mapped file leaves the mapping intact.
fn forget_older(org_dir: &Path, generation: i64, manifest: &Manifest) {
    let current = format!("g{generation:012}");
    let used: HashSet<&str> = manifest.files.values().map(String::as_str).collect();
    let Ok(entries) = std::fs::read_dir(org_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('g') && name != current {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let Ok(pooled) = std::fs::read_dir(org_dir.join("pool")) else { return };
    for entry in pooled.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        // (A `.part-` file is a download in progress, about to become a pooled file.)
        if !used.contains(name.as_str()) && !name.contains(".part-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Fills `dir` with the files of `manifest` (from the pool, fetching what it lacks) and its
/// `meta.json`; an empty manifest leaves it empty (a new index is created there).
pub async fn checkout(app: &App, org: &str, manifest: &Manifest, dir: &Path) -> Result<()> {
    let pool = app.search.org_dir(org).join("pool");
    std::fs::create_dir_all(&pool).map_err(failed)?;
    std::fs::create_dir_all(dir).map_err(failed)?;
    for (name, blob) in &manifest.files {
        let pooled = pool.join(checked(blob)?);
        if !pooled.exists() {
            let key = file_key(org, blob);
            let bytes =
                app.ports.blobs.get(&key).await?.ok_or_else(|| {
                    Error::internal(format!("search index file {key} is missing"))
                })?;
            let partial = pool.join(format!("{blob}.part-{}", super::super::new_id()));
            std::fs::write(&partial, &bytes).map_err(failed)?;
            std::fs::rename(&partial, &pooled).map_err(failed)?;
        }
        let linked = dir.join(checked(name)?);
        std::fs::hard_link(&pooled, &linked)
            .or_else(|_| std::fs::copy(&pooled, &linked).map(|_| ()))
            .map_err(failed)?;
    }
    if let Some(meta) = &manifest.meta {
        std::fs::write(dir.join(META_JSON), meta).map_err(failed)?;
    }
    Ok(())
}

/// A file name from a manifest: a plain name, never a path.
fn checked(name: &str) -> Result<&str> {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
        && !name.starts_with('.');
    if plain {
        Ok(name)
    } else {
        Err(Error::internal(format!("search manifest names a file {name:?}")))
    }
}

/// The files of the index in `dir` that its `meta.json` uses: those of its segments.
fn live_files(dir: &Path) -> Result<(String, Vec<String>)> {
    let meta = std::fs::read_to_string(dir.join(META_JSON)).map_err(failed)?;
    let parsed: serde_json::Value = serde_json::from_str(&meta).map_err(failed)?;
    let segments: HashSet<String> = parsed["segments"]
        .as_array()
        .map(|segments| {
            segments
                .iter()
                .filter_map(|s| s["segment_id"].as_str())
                .map(|id| id.replace('-', ""))
                .collect()
        })
        .unwrap_or_default();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let name = entry.map_err(failed)?.file_name().to_string_lossy().to_string();
        let segment = name.split('.').next().unwrap_or_default();
        if segments.contains(segment) {
            files.push(name);
        }
    }
    files.sort();
    Ok((meta, files))
}

/// What a manifest records besides the index's files.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// [`Manifest::stacks`].
    pub stacks: BTreeMap<String, Indexed>,
    /// [`Manifest::references`].
    pub references: BTreeMap<String, Vec<String>>,
}

/// Publishes the index in `dir` as the generation after `generation`, with what it records. Returns
/// false, changing nothing another run could see, when `generation` is no longer current.
pub async fn publish(
    app: &App,
    org: &str,
    generation: i64,
    previous: &Manifest,
    dir: &Path,
    recorded: Recorded,
) -> Result<bool> {
    let (meta, names) = live_files(dir)?;
    let pool = app.search.org_dir(org).join("pool");
    let mut files = BTreeMap::new();
    let mut uploaded = Vec::new();
    for name in names {
        // A name the previous generation has is its file: segment files never change, and a
        // segment's newer deletions get a newer name.
        if let Some(blob) = previous.files.get(&name) {
            files.insert(name, blob.clone());
            continue;
        }
        let blob = format!("{}-{name}", super::super::new_id());
        let bytes = std::fs::read(dir.join(&name)).map_err(failed)?;
        app.ports.blobs.put(&file_key(org, &blob), Bytes::from(bytes)).await?;
        let _ = std::fs::hard_link(dir.join(&name), pool.join(&blob));
        uploaded.push(blob.clone());
        files.insert(name, blob);
    }
    let next = generation + 1;
    let kept: HashSet<&String> = files.values().collect();
    let dropped = previous.files.values().filter(|b| !kept.contains(b)).cloned().collect();
    let id = format!("{next:012}-{}", super::super::new_id());
    let replaced = Some(previous.id.clone()).filter(|id| !id.is_empty());
    let Recorded { stacks, references } = recorded;
    let manifest =
        Manifest { id: id.clone(), meta: Some(meta), files, stacks, references, dropped, replaced };
    let body = serde_json::to_vec(&manifest).map_err(failed)?;
    app.ports.blobs.put(&manifest_key(org, &id), Bytes::from(body)).await?;
    let pointer = Item::new(pointer_pk(org), POINTER_SK)
        .with("generation", Value::N(next))
        .with("manifest", Value::S(id.clone()));
    let condition = if generation == 0 {
        Condition::NotExists
    } else {
        Condition::Equals("generation".into(), Value::N(generation))
    };
    let won = match app.ports.meta.put(pointer, Some(condition)).await {
        Ok(()) => true,
        Err(MetaError::ConditionFailed) => false,
        Err(e) => return Err(e.into()),
    };
    // The loser's blobs were never referenced; the winner's predecessor is one generation late
    // (what it dropped, and the manifest it replaced): a reader may still be fetching them.
    let unused = if won {
        let mut unused: Vec<String> = previous.dropped.iter().map(|b| file_key(org, b)).collect();
        unused.extend(previous.replaced.iter().map(|m| manifest_key(org, m)));
        unused
    } else {
        let mut unused: Vec<String> = uploaded.iter().map(|b| file_key(org, b)).collect();
        unused.push(manifest_key(org, &id));
        unused
    };
    for key in unused {
        if let Err(e) = app.ports.blobs.delete(&key).await {
            tracing::warn!(org, key, error = %e, "unused search index blob kept");
        }
    }
    Ok(won)
}
