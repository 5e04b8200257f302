//! Small blobs of the embedded blob store, kept in SQLite (`small.sqlite` in the blob root).
//!
//! A file blob is durable after a temp file, its fsync, a rename and the directory's fsync;
//! most blobs (checkpoints of small stacks, journal and event batches) are a few kilobytes, and
//! those two fsyncs and the hop to a blocking thread were most of the server's CPU in the
//! full-checkpoint benchmark (docs/BENCHMARKS.md, Server cost). Here a put is one row written
//! by the group-commit writer (`group_commit`): one WAL fsync (`synchronous=FULL`), shared by
//! the puts waiting at the same moment. [`super::file_blobs::FileBlobs`] decides which blob goes
//! where and keeps the two tiers consistent.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};

use super::group_commit::GroupWriter;
use crate::adapters::AdapterError;
use crate::ports::blob::BlobError;

/// Blobs up to this size go to SQLite; larger ones are files.
pub(crate) const SMALL_BLOB_BYTES: usize = 256 << 10;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blobs (
    key  TEXT NOT NULL PRIMARY KEY,
    body BLOB NOT NULL
);
";

/// The SQLite tier: a writer (group commit) and one reader connection.
pub(crate) struct SmallBlobs {
    writer: GroupWriter,
    reader: Arc<Mutex<Connection>>,
}

fn db(e: rusqlite::Error) -> BlobError {
    BlobError::Unavailable(format!("sqlite: {e}"))
}

impl SmallBlobs {
    /// Opens (creating when needed) the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, AdapterError> {
        let writer = super::sqlite::open(path, SCHEMA)?;
        let reader = super::sqlite::open(path, SCHEMA)?;
        Ok(SmallBlobs {
            writer: GroupWriter::spawn(writer, "small blobs")?,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, BlobError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(db)
        })
        .await
        .map_err(|e| BlobError::Unavailable(format!("sqlite task failed: {e}")))?
    }

    /// Stores `body` under `key`, replacing what was there; durable when it returns.
    pub(crate) async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let key = key.to_string();
        self.writer
            .write(
                move |conn| {
                    conn.execute(
                        "INSERT INTO blobs (key, body) VALUES (?1, ?2) \
                         ON CONFLICT (key) DO UPDATE SET body = excluded.body",
                        params![key, body.as_ref()],
                    )
                    .map(|_| ())
                    .map_err(db)
                },
                BlobError::Unavailable,
            )
            .await
    }

    /// The blob under `key`, if this tier holds it.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let key = key.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT body FROM blobs WHERE key = ?1", params![key], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map(|b| b.map(Bytes::from))
        })
        .await
    }

    /// Whether this tier holds `key`.
    pub(crate) async fn contains(&self, key: &str) -> Result<bool, BlobError> {
        let key = key.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT 1 FROM blobs WHERE key = ?1", params![key], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
        .await
    }

    /// Removes `key` if this tier holds it (no write otherwise); durable when it returns.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), BlobError> {
        if !self.contains(key).await? {
            return Ok(());
        }
        let key = key.to_string();
        self.writer
            .write(
                move |conn| {
                    conn.execute("DELETE FROM blobs WHERE key = ?1", params![key])
                        .map(|_| ())
                        .map_err(db)
                },
                BlobError::Unavailable,
            )
            .await
    }

    /// Up to `limit` keys starting with `prefix` and sorting after `after`, in byte order.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        let (prefix, after) = (prefix.to_string(), after.unwrap_or_default().to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // TEXT compares as bytes (BINARY collation), the order S3 lists in. The scan
            // starts at the prefix on the key's index; `substr` ends the matches.
            let mut stmt = conn.prepare_cached(
                "SELECT key FROM blobs WHERE key >= ?1 AND key > ?2 \
                 AND substr(key, 1, length(?1)) = ?1 ORDER BY key LIMIT ?3",
            )?;
            let keys = stmt.query_map(params![prefix, after, limit], |r| r.get::<_, String>(0))?;
            keys.collect()
        })
        .await
    }
}
