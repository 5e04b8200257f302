//! Opening the embedded SQLite databases (metadata and queues) the same way.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::adapters::AdapterError;

/// How long a connection waits for another connection's lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a SQLite database in WAL mode with a busy timeout, creating `schema` if needed.
pub(crate) fn open(path: &Path, schema: &str) -> Result<Connection, AdapterError> {
    // Two processes opening a fresh database at once can get SQLITE_BUSY straight away while
    // one of them creates the WAL files (the busy handler is not consulted there), so opening
    // retries for a bounded time.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match try_open(path, schema) {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => {
                return other
                    .map_err(|e| AdapterError::new("sqlite", format!("{}: {e}", path.display())))
            }
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn try_open(path: &Path, schema: &str) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    // Set first, so that even switching to WAL waits for another process where it can.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "cannot switch to WAL mode (got {mode})"
        )));
    }
    // FULL: a write (or message) acknowledged to a client survives a power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}
