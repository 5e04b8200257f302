//! Group commit for the embedded SQLite stores.
//!
//! With `synchronous=FULL` every commit fsyncs the WAL, and one transaction per request made
//! that one fsync per write. Here one writer thread per database takes every request waiting at
//! that moment, runs each inside its own savepoint of one IMMEDIATE transaction and commits once:
//! concurrent writes share the fsync. A request whose closure fails (a condition that does not
//! hold, an invalid item) rolls back to its savepoint only, so it never undoes the others.
//!
//! Every request of a group, failed or not, is answered only after the commit returned: a later
//! request may have seen an earlier one's changes (a create-if-absent that lost to it), so even a
//! failure is only true once those changes are durable. If the commit (or anything that undoes
//! the transaction) fails, every request of the group gets that failure: Ok still means durable.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::adapters::AdapterError;

/// Most requests in one group, so one slow group cannot grow without bound under load.
const MAX_GROUP: usize = 256;

/// One write request as the writer thread sees it, whatever its result type.
trait Request: Send {
    /// Runs the request's closure on the open transaction; true when its changes should stay.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the requester: with what `run` produced when the group committed (`failed` is
    /// None), else with the group's failure.
    fn answer(self: Box<Self>, failed: Option<String>);
}

struct Pending<T, E, F> {
    f: Option<F>,
    out: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
    unavailable: fn(String) -> E,
}

impl<T, E, F> Request for Pending<T, E, F>
where
    T: Send,
    E: Send,
    F: FnOnce(&Connection) -> Result<T, E> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panic must not take the writer thread (and every later request) down with it; the
        // savepoint rollback undoes whatever the closure had written. (Release builds abort on
        // panic anyway; this is for builds that unwind.)
        let out = catch_unwind(AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| Err((self.unavailable)("sqlite write panicked".into())));
        let keep = out.is_ok();
        self.out = Some(out);
        keep
    }

    fn answer(self: Box<Self>, failed: Option<String>) {
        let unavailable = self.unavailable;
        let out = match (failed, self.out) {
            (None, Some(out)) => out,
            (Some(reason), _) => Err(unavailable(reason)),
            (None, None) => Err(unavailable("sqlite write never ran".into())),
        };
        // The requester may have gone away (its future dropped): nobody left to tell.
        let _ = self.reply.send(out);
    }
}

/// Counters, for tests and diagnostics.
#[derive(Default)]
struct Stats {
    /// Requests handed to the writer thread.
    submitted: AtomicU64,
    /// COMMITs attempted (one per group that got that far).
    commits: AtomicU64,
}

/// The handle to a database's writer thread; the thread ends when the handle is dropped (after
/// finishing the requests already sent).
pub(crate) struct GroupWriter {
    requests: mpsc::Sender<Box<dyn Request>>,
    stats: Arc<Stats>,
}

impl GroupWriter {
    /// Starts the writer thread, which owns `conn` from now on (`name` says which store, in
    /// errors).
    pub(crate) fn spawn(conn: Connection, name: &str) -> Result<Self, AdapterError> {
        let (requests, receiver) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let thread_stats = Arc::clone(&stats);
        // Unnamed on purpose: on Linux the thread then keeps the name of the thread that opened
        // the store, so tools that find the server's threads by name (loadgen's CPU count)
        // still count the time spent writing.
        std::thread::Builder::new()
            .spawn(move || run(&conn, &receiver, &thread_stats))
            .map_err(|e| AdapterError::new("sqlite", format!("start {name} writer: {e}")))?;
        Ok(GroupWriter { requests, stats })
    }

    /// Runs `f` in the next group's transaction and returns its result once that transaction
    /// committed. `unavailable` makes the error for a failed group or a stopped writer.
    pub(crate) async fn write<T, E, F>(&self, f: F, unavailable: fn(String) -> E) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let request = Pending { f: Some(f), out: None, reply, unavailable };
        self.stats.submitted.fetch_add(1, Ordering::SeqCst);
        if self.requests.send(Box::new(request)).is_err() {
            return Err(unavailable("sqlite writer stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(unavailable("sqlite writer stopped".into())))
    }

    /// How many requests were handed to the writer so far.
    #[cfg(test)]
    pub(crate) fn submitted(&self) -> u64 {
        self.stats.submitted.load(Ordering::SeqCst)
    }

    /// Waits (at most a few seconds) until `n` requests were handed to the writer.
    #[cfg(test)]
    pub(crate) async fn wait_for_submitted(&self, n: u64) {
        for _ in 0..2500 {
            if self.submitted() >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("only {} of {n} requests were submitted", self.submitted());
    }

    /// Holds the writer thread inside a request until the returned sender is used or dropped,
    /// so that the requests sent meanwhile all wait for the same next group.
    #[cfg(test)]
    pub(crate) fn hold(&self) -> mpsc::Sender<()> {
        let (release, wait) = mpsc::channel::<()>();
        let (entered, inside) = mpsc::channel::<()>();
        let (reply, _) = oneshot::channel::<Result<(), String>>();
        let f = move |_: &Connection| {
            let _ = entered.send(());
            let _ = wait.recv_timeout(std::time::Duration::from_secs(30));
            Ok(())
        };
        let request = Pending { f: Some(f), out: None, reply, unavailable: |e| e };
        self.stats.submitted.fetch_add(1, Ordering::SeqCst);
        let _ = self.requests.send(Box::new(request));
        // Only once the writer is inside it do later requests have to wait for the next group.
        let _ = inside.recv_timeout(std::time::Duration::from_secs(30));
        release
    }

    /// How many COMMITs the writer ran so far.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.stats.commits.load(Ordering::SeqCst)
    }
}

/// The writer thread: a group is whatever is waiting when the previous group finished, so a
/// lone request waits for nobody and a burst shares one commit.
fn run(conn: &Connection, receiver: &mpsc::Receiver<Box<dyn Request>>, stats: &Stats) {
    let mut queue: VecDeque<Box<dyn Request>> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match receiver.recv() {
                Ok(request) => queue.push_back(request),
                // Every handle is gone and nothing is left to do.
                Err(mpsc::RecvError) => return,
            }
        }
        while queue.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(request) => queue.push_back(request),
                Err(_) => break,
            }
        }
        run_group(conn, &mut queue, stats);
    }
}

/// Runs requests from the front of `queue` in one transaction and answers them. Requests not
/// reached (the transaction was undone under them) stay queued for the next group.
fn run_group(conn: &Connection, queue: &mut VecDeque<Box<dyn Request>>, stats: &Stats) {
    // IMMEDIATE takes the write lock up front (waiting up to the busy timeout for another
    // process), so each request's check-and-write is atomic against other processes too.
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let reason = format!("sqlite: {e}");
        for request in queue.drain(..) {
            request.answer(Some(reason.clone()));
        }
        return;
    }
    let mut ran: Vec<Box<dyn Request>> = Vec::with_capacity(queue.len());
    while let Some(mut request) = queue.pop_front() {
        let step = conn.execute_batch("SAVEPOINT request").and_then(|()| {
            if request.run(conn) {
                conn.execute_batch("RELEASE request")
            } else {
                conn.execute_batch("ROLLBACK TO request; RELEASE request")
            }
        });
        ran.push(request);
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction itself,
        // taking the earlier requests' changes with it: then the whole group has failed.
        let undone = match step {
            Err(e) => Some(format!("sqlite: {e}")),
            Ok(()) if conn.is_autocommit() => Some("sqlite rolled back the transaction".into()),
            Ok(()) => None,
        };
        if let Some(reason) = undone {
            fail(conn, ran, &reason);
            return;
        }
    }
    stats.commits.fetch_add(1, Ordering::SeqCst);
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for request in ran {
                request.answer(None);
            }
        }
        Err(e) => fail(conn, ran, &format!("sqlite commit: {e}")),
    }
}

/// Undoes the open transaction (if SQLite has not already) and answers every request with
/// `reason`.
fn fail(conn: &Connection, ran: Vec<Box<dyn Request>>, reason: &str) {
    if !conn.is_autocommit() {
        // Failing leaves the transaction open; the next BEGIN then fails and reports it.
        let _ = conn.execute_batch("ROLLBACK");
    }
    for request in ran {
        request.answer(Some(reason.to_string()));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::GroupWriter;

    /// A fresh directory under the system temp dir; removing it is left to the OS.
    pub(crate) fn temp_dir(what: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("stackhouse-{what}-{}", hex::encode(rand::random::<[u8; 8]>())));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn open(dir: &std::path::Path) -> GroupWriter {
        let conn = super::super::sqlite::open(
            &dir.join("t.sqlite3"),
            "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL);",
        )
        .unwrap();
        GroupWriter::spawn(conn, "test").unwrap()
    }

    fn insert(conn: &rusqlite::Connection, k: &str) -> Result<(), String> {
        conn.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k]).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn count(conn: &rusqlite::Connection, k: &str) -> Result<i64, String> {
        conn.query_row("SELECT COUNT(*) FROM t WHERE k = ?1", [k], |r| r.get(0))
            .map_err(|e| e.to_string())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn waiting_requests_share_one_commit_and_a_failure_undoes_only_itself() {
        let dir = temp_dir("group-commit");
        let writer = std::sync::Arc::new(open(&dir));
        let release = writer.hold();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let writer = std::sync::Arc::clone(&writer);
            tasks.push(tokio::spawn(async move {
                writer
                    .write(
                        move |conn| {
                            insert(conn, &format!("k{i}"))?;
                            // Every third request writes, then fails: its write must vanish.
                            if i % 3 == 0 {
                                return Err(format!("request {i} fails"));
                            }
                            Ok(i)
                        },
                        |e: String| e,
                    )
                    .await
            }));
        }
        writer.wait_for_submitted(41).await;
        release.send(()).unwrap();
        for (i, task) in tasks.into_iter().enumerate() {
            let out = task.await.unwrap();
            if i % 3 == 0 {
                assert_eq!(out, Err(format!("request {i} fails")));
            } else {
                assert_eq!(out, Ok(i));
            }
        }
        // One commit for the blocking request, one for all 40 that queued behind it.
        assert_eq!(writer.commits(), 2);
        for i in 0..40 {
            let k = format!("k{i}");
            let n = writer.write(move |conn| count(conn, &k), |e: String| e).await.unwrap();
            assert_eq!(n, i64::from(i % 3 != 0), "k{i}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_request_fails_alone() {
        let dir = temp_dir("group-commit");
        let writer = open(&dir);
        let out: Result<(), String> = writer
            .write(
                |conn| {
                    insert(conn, "p")?;
                    panic!("boom")
                },
                |e: String| e,
            )
            .await;
        assert!(out.is_err());
        writer.write(|conn| insert(conn, "q"), |e: String| e).await.unwrap();
        let n = writer.write(|conn| count(conn, "p"), |e: String| e).await.unwrap();
        assert_eq!(n, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
