//! [`MetadataStore`] on one SQLite table, with DynamoDB's semantics: conditional writes,
//! all-or-nothing transactions, sort-key range queries with pagination, and TTL.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::group_commit::GroupWriter;
use super::now_secs;
use crate::adapters::AdapterError;
use crate::ports::metadata::{
    Condition, Item, MetaError, MetadataStore, Page, Query, SortKey, TransactOp, Update, Value,
    TTL_ATTR,
};

/// Every this many write transactions, one also deletes expired rows.
const PURGE_EVERY: u64 = 64;
/// At most this many expired rows are deleted per purge, so no write pays for a backlog.
const PURGE_BATCH: i64 = 256;
/// DynamoDB's limits, enforced here so the embedded backend rejects what AWS would reject.
const MAX_PK_BYTES: usize = 2048;
const MAX_SK_BYTES: usize = 1024;
const MAX_ITEM_BYTES: usize = 400 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk    TEXT NOT NULL,
    sk    TEXT NOT NULL,
    attrs TEXT NOT NULL,
    ttl   INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_ttl ON items (ttl) WHERE ttl IS NOT NULL;
";

/// The embedded metadata store: table `items(pk, sk, attrs, ttl)` in one SQLite file.
///
/// Writes go through a [`GroupWriter`]: each runs in its own savepoint of an IMMEDIATE
/// transaction that SQLite's write lock guards from the start, so check-and-write is atomic
/// against other tasks and other processes, and concurrent writes share one commit (one WAL
/// fsync). As on DynamoDB, conditions see TTL-expired items until they are purged; `get` and
/// `query` never return them.
pub struct SqliteMeta {
    /// Writes go through one connection on its own thread; SQLite allows one writer anyway.
    writer: GroupWriter,
    /// Reads use their own connection so they do not queue behind a write's fsync (WAL lets
    /// readers run beside the writer and see every committed transaction).
    reader: Arc<Mutex<Connection>>,
    /// Counts writes, to purge expired rows every [`PURGE_EVERY`].
    writes: Arc<AtomicU64>,
}

impl SqliteMeta {
    /// Opens (creating when needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, AdapterError> {
        let writer = super::sqlite::open(path, SCHEMA)?;
        let reader = super::sqlite::open(path, SCHEMA)?;
        Ok(SqliteMeta {
            writer: GroupWriter::spawn(writer, "metadata")?,
            reader: Arc::new(Mutex::new(reader)),
            writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Runs a write in the writer's next group; Ok once the group committed.
    async fn write<T, F>(&self, f: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    {
        let writes = Arc::clone(&self.writes);
        self.writer
            .write(
                move |conn| {
                    let out = f(conn)?;
                    // Inside the write's savepoint, as before group commit: a failed purge
                    // fails this write only.
                    if writes.fetch_add(1, Ordering::Relaxed).is_multiple_of(PURGE_EVERY) {
                        purge_expired(conn, now_secs()).map_err(db)?;
                    }
                    Ok(out)
                },
                MetaError::Unavailable,
            )
            .await
    }

    /// Runs a read on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| MetaError::Unavailable(format!("sqlite task failed: {e}")))?
    }

    /// Runs a keyed lookup on the caller's thread when the reader connection is free: on a
    /// warm page cache it takes microseconds, less than handing it to the blocking pool and
    /// back (two thread wake-ups, which were most of a small request's server time). When
    /// another read holds the connection, it waits its turn on the blocking pool instead, so
    /// an async worker never blocks behind a long read.
    async fn read_point<T, F>(&self, f: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    {
        {
            let inline = match self.reader.try_lock() {
                Ok(conn) => Some(conn),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(conn) = inline {
                return f(&conn);
            }
        }
        self.read(f).await
    }
}

/// Queries of at most this many items run like keyed lookups ([`SqliteMeta::read_point`]):
/// the services page by 100.
const INLINE_QUERY_LIMIT: usize = 100;

fn db(e: rusqlite::Error) -> MetaError {
    MetaError::Unavailable(format!("sqlite: {e}"))
}

/// Reads the stored row, expired or not: conditions see what DynamoDB would see.
fn load(conn: &Connection, pk: &str, sk: &str) -> Result<Option<Item>, MetaError> {
    let attrs: Option<String> = conn
        .query_row("SELECT attrs FROM items WHERE pk = ?1 AND sk = ?2", params![pk, sk], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db)?;
    attrs.map(|a| decode(pk.to_string(), sk.to_string(), &a)).transpose()
}

fn decode(pk: String, sk: String, attrs: &str) -> Result<Item, MetaError> {
    let attrs: BTreeMap<String, Value> = serde_json::from_str(attrs)
        .map_err(|e| MetaError::Unavailable(format!("corrupt item {pk}/{sk}: {e}")))?;
    Ok(Item { pk, sk, attrs })
}

fn store(conn: &Connection, item: &Item) -> Result<(), MetaError> {
    let attrs = serde_json::to_string(&item.attrs)
        .map_err(|e| MetaError::Invalid(format!("unserialisable attributes: {e}")))?;
    // DynamoDB only honours a numeric TTL attribute; anything else never expires.
    let ttl = item.n(TTL_ATTR);
    conn.execute(
        "INSERT INTO items (pk, sk, attrs, ttl) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (pk, sk) DO UPDATE SET attrs = excluded.attrs, ttl = excluded.ttl",
        params![item.pk, item.sk, attrs, ttl],
    )
    .map_err(db)?;
    Ok(())
}

fn remove(conn: &Connection, pk: &str, sk: &str) -> Result<(), MetaError> {
    conn.execute("DELETE FROM items WHERE pk = ?1 AND sk = ?2", params![pk, sk]).map_err(db)?;
    Ok(())
}

fn check(conn: &Connection, pk: &str, sk: &str, cond: Option<&Condition>) -> Result<(), MetaError> {
    match cond {
        None => Ok(()),
        Some(c) if c.holds(load(conn, pk, sk)?.as_ref()) => Ok(()),
        Some(_) => Err(MetaError::ConditionFailed),
    }
}

fn purge_expired(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM items WHERE (pk, sk) IN
           (SELECT pk, sk FROM items WHERE ttl IS NOT NULL AND ttl <= ?1 LIMIT ?2)",
        params![now, PURGE_BATCH],
    )
}

fn validate_key(pk: &str, sk: &str) -> Result<(), MetaError> {
    if pk.is_empty() || sk.is_empty() {
        return Err(MetaError::Invalid("pk and sk must not be empty".into()));
    }
    if pk.len() > MAX_PK_BYTES || sk.len() > MAX_SK_BYTES {
        return Err(MetaError::Invalid("pk or sk too long".into()));
    }
    Ok(())
}

fn validate_item(item: &Item) -> Result<(), MetaError> {
    validate_key(&item.pk, &item.sk)?;
    let mut size = 2 + item.pk.len() + 2 + item.sk.len();
    for (name, value) in &item.attrs {
        if name.is_empty() || name == "pk" || name == "sk" {
            return Err(MetaError::Invalid(format!("attribute name {name:?} is not allowed")));
        }
        // Sizes as DynamoDB counts them, closely enough to reject what it would reject.
        size += name.len()
            + match value {
                Value::S(s) => s.len(),
                Value::B(b) => b.len(),
                Value::N(_) => 21,
                Value::Bool(_) => 1,
            };
    }
    if size > MAX_ITEM_BYTES {
        return Err(MetaError::Invalid(format!("item {}/{} is over 400 KB", item.pk, item.sk)));
    }
    Ok(())
}

/// The smallest string greater than every string starting with `prefix` (None: no bound).
///
/// SQLite compares TEXT bytewise and UTF-8 byte order is code point order, so bumping the last
/// code point gives an exact, case-sensitive range, unlike `LIKE`.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let bumped = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(c) = bumped {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
        // `last` was char::MAX: no successor at this position, bump the one before.
    }
    None
}

#[async_trait]
impl MetadataStore for SqliteMeta {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, MetaError> {
        validate_key(pk, sk)?;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.read_point(move |conn| {
            let row: Option<String> = conn
                .prepare_cached(
                    "SELECT attrs FROM items WHERE pk = ?1 AND sk = ?2
                       AND (ttl IS NULL OR ttl > ?3)",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![pk, sk, now_secs()], |r| r.get(0)).optional()
                })
                .map_err(db)?;
            row.map(|a| decode(pk, sk, &a)).transpose()
        })
        .await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), MetaError> {
        validate_item(&item)?;
        self.write(move |tx| {
            check(tx, &item.pk, &item.sk, condition.as_ref())?;
            store(tx, &item)
        })
        .await
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<Condition>,
    ) -> Result<(), MetaError> {
        validate_key(pk, sk)?;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.write(move |tx| {
            check(tx, &pk, &sk, condition.as_ref())?;
            remove(tx, &pk, &sk)
        })
        .await
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), MetaError> {
        crate::ports::metadata::check_transaction(&ops)?;
        for op in &ops {
            match op {
                TransactOp::Put(item, _) => validate_item(item)?,
                TransactOp::Delete { pk, sk, .. } | TransactOp::Check { pk, sk, .. } => {
                    validate_key(pk, sk)?
                }
            }
        }
        self.write(move |tx| {
            // Check every condition before writing anything; an error rolls back this write's
            // savepoint, so a failure leaves no trace either way.
            for op in &ops {
                match op {
                    TransactOp::Put(item, c) => check(tx, &item.pk, &item.sk, c.as_ref())?,
                    TransactOp::Delete { pk, sk, condition } => {
                        check(tx, pk, sk, condition.as_ref())?
                    }
                    TransactOp::Check { pk, sk, condition } => check(tx, pk, sk, Some(condition))?,
                }
            }
            for op in &ops {
                match op {
                    TransactOp::Put(item, _) => store(tx, item)?,
                    TransactOp::Delete { pk, sk, .. } => remove(tx, pk, sk)?,
                    TransactOp::Check { .. } => {}
                }
            }
            Ok(())
        })
        .await
    }

    async fn update(&self, update: Update) -> Result<Item, MetaError> {
        update.check()?;
        validate_key(&update.pk, &update.sk)?;
        self.write(move |tx| {
            let current = load(tx, &update.pk, &update.sk)?;
            if let Some(c) = &update.condition {
                if !c.holds(current.as_ref()) {
                    return Err(MetaError::ConditionFailed);
                }
            }
            let item = update.apply(current)?;
            validate_item(&item)?;
            store(tx, &item)?;
            Ok(item)
        })
        .await
    }

    async fn query(&self, query: Query) -> Result<Page, MetaError> {
        if query.pk.is_empty() {
            return Err(MetaError::Invalid("pk must not be empty".into()));
        }
        if query.limit == 0 {
            return Err(MetaError::Invalid("query limit must be at least 1".into()));
        }
        let mut sql =
            String::from("SELECT sk, attrs FROM items WHERE pk = ?1 AND (ttl IS NULL OR ttl > ?2)");
        let mut args: Vec<rusqlite::types::Value> =
            vec![query.pk.clone().into(), now_secs().into()];
        let mut bind = |sql: &mut String, clause: &str, v: String| {
            args.push(v.into());
            sql.push_str(&format!(" AND sk {clause} ?{}", args.len()));
        };
        match &query.sk {
            SortKey::All => {}
            // An empty prefix matches every sort key.
            SortKey::BeginsWith(p) if p.is_empty() => {}
            SortKey::BeginsWith(p) => {
                bind(&mut sql, ">=", p.clone());
                if let Some(end) = prefix_successor(p) {
                    bind(&mut sql, "<", end);
                }
            }
            SortKey::Between(lo, hi) => {
                if lo > hi {
                    return Err(MetaError::Invalid(format!(
                        "sort-key range {lo:?}..={hi:?} is empty (lower bound above upper)"
                    )));
                }
                bind(&mut sql, ">=", lo.clone());
                bind(&mut sql, "<=", hi.clone());
            }
        }
        if let Some(after) = &query.after {
            bind(&mut sql, if query.ascending { ">" } else { "<" }, after.clone());
        }
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        args.push(limit.into());
        sql.push_str(&format!(
            " ORDER BY sk {} LIMIT ?{}",
            if query.ascending { "ASC" } else { "DESC" },
            args.len()
        ));
        let pk = query.pk.clone();
        let run = move |conn: &Connection| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(db)?;
            let mut items = Vec::new();
            for row in rows {
                let (sk, attrs) = row.map_err(db)?;
                items.push(decode(pk.clone(), sk, &attrs)?);
            }
            Ok(items)
        };
        // A page of the usual size is read like a keyed lookup; a larger one (a scan) always
        // on the blocking pool.
        let items = if query.limit <= INLINE_QUERY_LIMIT {
            self.read_point(run).await?
        } else {
            self.read(run).await?
        };
        // A full page may have more behind it; the caller asks again and may get an empty page.
        let next =
            if items.len() == query.limit { items.last().map(|i| i.sk.clone()) } else { None };
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{prefix_successor, SqliteMeta};
    use crate::adapters::embedded::group_commit::tests::temp_dir;
    use crate::ports::metadata::{Condition, Item, MetaError, MetadataStore, TransactOp, Value};

    /// A keyed read while the reader connection is busy (a long query) waits its turn on the
    /// blocking pool rather than failing or blocking the async worker, and then answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[expect(clippy::await_holding_lock, reason = "the test holds the reader busy on purpose")]
    async fn a_point_read_behind_a_busy_reader_waits_its_turn() {
        let dir = temp_dir("meta-busy-reader");
        let store = Arc::new(SqliteMeta::open(&dir.join("m.sqlite3")).unwrap());
        store.put(Item::new("P", "S").with("v", Value::N(7)), None).await.unwrap();
        let busy = store.reader.lock().unwrap();
        let reading = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.get("P", "S").await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!reading.is_finished(), "the read waits for the connection");
        drop(busy);
        let item = reading.await.unwrap().unwrap().expect("the item");
        assert_eq!(item.n("v"), Some(7));
        // Free again: answered inline.
        assert!(store.get("P", "S").await.unwrap().is_some());
    }

    /// Concurrent writes that queue up together share one commit, and each still gets its own
    /// answer: one winner of a create-if-absent race, failed transactions leave no trace and
    /// do not undo the writes grouped with them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_a_commit_and_keep_their_own_answers() {
        let dir = temp_dir("meta-group");
        let store = Arc::new(SqliteMeta::open(&dir.join("m.sqlite3")).unwrap());
        let release = store.writer.hold();
        const N: usize = 48;
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let n = i64::try_from(i).unwrap();
                match i % 4 {
                    0 => {
                        let item = Item::new("race", "x").with("v", Value::N(n));
                        store.put(item, Some(Condition::NotExists)).await
                    }
                    1 => store.put(Item::new("own", format!("{i}")), None).await,
                    2 => {
                        let ops = vec![
                            TransactOp::Put(Item::new("tx", format!("{i}")), None),
                            TransactOp::Check {
                                pk: "never".into(),
                                sk: "x".into(),
                                condition: Condition::Exists,
                            },
                        ];
                        store.transact(ops).await
                    }
                    _ => {
                        let ops = vec![
                            TransactOp::Put(
                                Item::new("tx", format!("{i}")),
                                Some(Condition::NotExists),
                            ),
                            TransactOp::Put(Item::new("tx2", format!("{i}")), None),
                        ];
                        store.transact(ops).await
                    }
                }
            }));
        }
        store.writer.wait_for_submitted(1 + N as u64).await;
        release.send(()).unwrap();
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let out = task.await.unwrap();
            match i % 4 {
                0 => match out {
                    Ok(()) => winners.push(i),
                    Err(MetaError::ConditionFailed) => {}
                    Err(e) => panic!("racer {i}: {e:?}"),
                },
                2 => assert!(matches!(out, Err(MetaError::ConditionFailed)), "{i}: {out:?}"),
                _ => assert!(out.is_ok(), "{i}: {out:?}"),
            }
        }
        // The holding request's group, then one group for everything that queued behind it.
        assert_eq!(store.writer.commits(), 2);
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        let race = store.get("race", "x").await.unwrap().unwrap();
        assert_eq!(race.n("v"), Some(i64::try_from(winners[0]).unwrap()));
        for i in 0..N {
            let sk = format!("{i}");
            let own = store.get("own", &sk).await.unwrap();
            let tx = store.get("tx", &sk).await.unwrap();
            let tx2 = store.get("tx2", &sk).await.unwrap();
            assert_eq!(own.is_some(), i % 4 == 1, "own {i}");
            assert_eq!(tx.is_some(), i % 4 == 3, "tx {i}");
            assert_eq!(tx2.is_some(), i % 4 == 3, "tx2 {i}");
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn prefix_successor_bounds_exactly_the_prefixed_strings() {
        assert_eq!(prefix_successor("ab"), Some("ac".to_string()));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a\u{D7FF}"), Some("a\u{E000}".to_string()));
        assert_eq!(prefix_successor("a\u{10FFFF}"), Some("b".to_string()));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        let end = prefix_successor("V#").unwrap();
        for s in ["V#", "V#\u{10FFFF}", "V#zz"] {
            assert!(s >= "V#" && s < end.as_str(), "{s:?} should be in range");
        }
        for s in ["V$", "V", "v#", "W"] {
            assert!(!(s >= "V#" && s < end.as_str()), "{s:?} should be out of range");
        }
    }
}
