//! Embedded adapters: SQLite (bundled) for metadata and queues, files for blobs, a local
//! master key file for data keys. Everything lives under one data directory.
//!
//! Layout of the data directory:
//!
//! | path | what |
//! |---|---|
//! | `metadata.sqlite3` | the metadata table ([`SqliteMeta`]) |
//! | `queue.sqlite3` | messages of every queue ([`SqliteQueue`]) |
//! | `blobs/` | one file per object ([`FileBlobs`]) |
//! | `presign.key` | HMAC secret of presigned blob URLs ([`PresignVerifier`]) |
//! | `master.key` | AES-256 master key wrapping data keys ([`LocalKeys`]) |
//! | `aws-standin.json` | secrets and parameters ESC's AWS providers read ([`StandIn`]) |
//!
//! Several processes may open the same directory at once (the emulator plus an admin
//! command): SQLite runs in WAL mode with a busy timeout, blob writes are atomic renames or
//! links, and the key files are created with an atomic link so every process sees one key.

mod dir_sync;
pub mod file_blobs;
mod group_commit;
pub mod hub;
pub mod local_keys;
mod sqlite;
pub mod sqlite_meta;
pub mod sqlite_queue;
pub mod standin;

pub use file_blobs::{presigned_key_from_path, FileBlobs, PresignVerifier, PRESIGN_PATH_PREFIX};
pub use hub::Hub;
pub use local_keys::LocalKeys;
pub use sqlite_meta::SqliteMeta;
pub use sqlite_queue::SqliteQueue;
pub use standin::StandIn;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::adapters::AdapterError;
use crate::ports::queue::default_queues;
use crate::ports::{Ports, QueueSpec};

/// Where and how the embedded adapters keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// The data directory; created when missing.
    pub data_dir: PathBuf,
    /// Base URL the emulator serves (e.g. `http://127.0.0.1:8080`); presigned blob URLs point
    /// at `{public_url}/_stackhouse/blobs/…`.
    pub public_url: String,
    /// The queues that exist (each with its `<name>-dlq`); any other name is unknown.
    pub queues: Vec<QueueSpec>,
}

impl EmbeddedConfig {
    /// A configuration with the default queues ([`default_queues`]).
    pub fn new(data_dir: impl Into<PathBuf>, public_url: impl Into<String>) -> Self {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            public_url: public_url.into(),
            queues: default_queues(),
        }
    }
}

/// Opens (creating when needed) every embedded adapter under `cfg.data_dir`.
///
/// Returns the port bundle and the verifier the emulator needs to serve presigned blob URLs.
/// Blocking: call it once at startup, not on a hot path.
pub fn open(cfg: &EmbeddedConfig) -> Result<(Ports, Arc<PresignVerifier>), AdapterError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        AdapterError::new("embedded", format!("create {}: {e}", cfg.data_dir.display()))
    })?;
    let meta = SqliteMeta::open(&cfg.data_dir.join("metadata.sqlite3"))?;
    let verifier = Arc::new(PresignVerifier::load_or_create(&cfg.data_dir.join("presign.key"))?);
    let blobs =
        FileBlobs::open(&cfg.data_dir.join("blobs"), &cfg.public_url, Arc::clone(&verifier))?;
    let queue = SqliteQueue::open(&cfg.data_dir.join("queue.sqlite3"), &cfg.queues)?;
    let keys = LocalKeys::open(&cfg.data_dir.join("master.key"))?;
    let ports = Ports {
        meta: Arc::new(meta),
        blobs: Arc::new(blobs),
        queue: Arc::new(queue),
        keys: Arc::new(keys),
        // The emulator replaces it with the hub its WebSocket server attaches sockets to.
        push: Arc::new(Hub::default()),
        external: Arc::new(StandIn::new(cfg.data_dir.join(standin::STANDIN_FILE))),
    };
    Ok((ports, verifier))
}

/// Reads a 32-byte secret, or creates it with fresh random bytes when the file is missing.
///
/// Creation writes a private temp file and hard-links it into place: the link fails when the
/// file already exists, so two processes starting at once agree on one secret (the loser
/// reads the winner's), and nobody ever reads a half-written file.
pub(crate) fn load_or_create_secret(path: &Path) -> Result<[u8; 32], String> {
    // Two rounds: a concurrent creator can make our link fail, then we read its file.
    for _ in 0..2 {
        match std::fs::read(path) {
            Ok(bytes) => {
                return <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    format!("{} holds {} bytes, expected 32", path.display(), bytes.len())
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        }
        let secret: [u8; 32] = rand::random();
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let tmp = dir.join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
        let written = write_private(&tmp, &secret);
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        // The temp name is ours alone; failing to remove it only leaves litter.
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(dir).map_err(|e| format!("sync {}: {e}", dir.display()))?;
                return Ok(secret);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("create {}: {e}", path.display())),
        }
    }
    Err(format!("{} keeps appearing and vanishing", path.display()))
}

/// Creates `path` readable by the owner only (0600 on Unix) and writes `bytes` durably.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a directory entry change (create, rename, link, delete) durable. An error means the
/// change may not survive a crash, so a write waiting on it must not be acknowledged. (Other
/// platforms than Unix cannot open directories; there it does nothing.)
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::fs::File::open(dir)?.sync_all();
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and any missing parents like `create_dir_all`, and makes each directory it
/// created durable in its parent (a new directory's entry is a change of its parent), up to an
/// existing ancestor.
pub(crate) fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The highest missing ancestor, whose parent must be synced once everything is created.
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.is_dir() {
        missing.push(cur);
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    for created in missing {
        if let Some(parent) = created.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch, as TTL attributes count them.
pub(crate) fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}
