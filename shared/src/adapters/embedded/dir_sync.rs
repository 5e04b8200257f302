//! Shared directory fsyncs for blob writes.
//!
//! A blob put is durable once the rename (or link) that published it is, which takes an fsync
//! of the directory after the rename. fsync works on the directory itself, not on one caller's
//! change: it makes durable every entry change made in that directory before it started,
//! whoever made it. So puts into one directory at the same time (a burst of journal or event
//! batches of one update) can share one: each takes a ticket after its rename and returns once
//! a sync that started after its ticket finished. A sync already running when the ticket was
//! taken may have started before the rename and does not count; the next one does, and it
//! covers every ticket taken while the first ran. A lone put still does exactly one fsync.
//!
//! A sync that fails fails every ticket it covered: those changes may not be durable, and
//! their puts must not be acknowledged (a later fsync's success says nothing about them: after
//! a failed fsync the kernel may have dropped the dirty state).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The directories being synced, each shared by the puts waiting on it.
#[derive(Default)]
pub(crate) struct DirSyncs {
    dirs: Mutex<HashMap<PathBuf, Arc<DirSync>>>,
    /// Directory fsyncs run, for tests and diagnostics.
    syncs: AtomicU64,
}

#[derive(Default)]
struct DirSync {
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Default)]
struct State {
    /// Tickets handed out: one per change made in the directory.
    tickets: u64,
    /// Every ticket up to this one is covered by a finished sync.
    synced: u64,
    /// Whether a sync is running now.
    running: bool,
    /// Ticket ranges `(after, up_to]` whose covering sync failed, with the error.
    failed: Vec<(u64, u64, String)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data are counters updated in single steps, consistent even after a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DirSyncs {
    /// Returns once an fsync of `dir` that started after this call began has finished (see
    /// the module docs). Call it after changing an entry of `dir`, from a blocking thread.
    pub(crate) fn after_change(&self, dir: &Path) -> std::io::Result<()> {
        self.after_change_with(dir, super::sync_dir)
    }

    /// [`Self::after_change`] with the sync operation given, so tests can see and pace it.
    fn after_change_with(
        &self,
        dir: &Path,
        sync: impl Fn(&Path) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let entry = Arc::clone(lock(&self.dirs).entry(dir.to_path_buf()).or_default());
        let outcome = {
            let mut state = lock(&entry.state);
            state.tickets += 1;
            let mine = state.tickets;
            while state.synced < mine {
                if state.running {
                    state = entry.finished.wait(state).unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                // Every ticket handed out so far belongs to a change made before this sync.
                let covers = state.tickets;
                state.running = true;
                drop(state);
                self.syncs.fetch_add(1, Ordering::Relaxed);
                let result = sync(dir);
                state = lock(&entry.state);
                state.running = false;
                if let Err(e) = result {
                    let after = state.synced;
                    state.failed.push((after, covers, e.to_string()));
                }
                state.synced = covers;
                entry.finished.notify_all();
            }
            match state.failed.iter().find(|(after, up_to, _)| *after < mine && mine <= *up_to) {
                Some((_, _, e)) => Err(std::io::Error::other(format!("directory fsync: {e}"))),
                None => Ok(()),
            }
        };
        // Forget the directory once nobody else holds it; new holders only ever clone it under
        // the map's lock, so the count cannot grow while it is checked there.
        let mut dirs = lock(&self.dirs);
        if Arc::strong_count(&entry) == 2 {
            dirs.remove(dir);
        }
        outcome
    }

    /// How many directory fsyncs ran.
    #[cfg(test)]
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Tickets handed out for `dir` and not yet forgotten.
    #[cfg(test)]
    fn tickets(&self, dir: &Path) -> u64 {
        lock(&self.dirs).get(dir).map_or(0, |e| lock(&e.state).tickets)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    use super::DirSyncs;

    /// A change whose sync is running and held until the sender is used; returns once the
    /// sync has started.
    fn hold_a_sync(
        syncs: &Arc<DirSyncs>,
        dir: &'static Path,
    ) -> (std::thread::JoinHandle<std::io::Result<()>>, mpsc::Sender<()>) {
        let (entered, inside) = mpsc::channel();
        let (release, wait) = mpsc::channel::<()>();
        let syncs = Arc::clone(syncs);
        let first = std::thread::spawn(move || {
            syncs.after_change_with(dir, |_| {
                entered.send(()).unwrap();
                wait.recv_timeout(Duration::from_secs(30)).unwrap();
                Ok(())
            })
        });
        inside.recv_timeout(Duration::from_secs(30)).unwrap();
        (first, release)
    }

    /// Puts arriving while a sync runs are not covered by it (it may have started before their
    /// renames) but all share the next one; the map forgets the directory afterwards.
    #[test]
    fn changes_during_a_sync_share_the_next_one() {
        let syncs = Arc::new(DirSyncs::default());
        let dir = Path::new("/some/dir");
        let (first, release) = hold_a_sync(&syncs, dir);
        let later = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..8 {
            let (syncs, later) = (Arc::clone(&syncs), Arc::clone(&later));
            threads.push(std::thread::spawn(move || {
                syncs.after_change_with(dir, |_| {
                    later.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            }));
        }
        for _ in 0..3000 {
            if syncs.tickets(dir) == 9 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(syncs.tickets(dir), 9);
        // None of the eight may return on the running sync.
        assert_eq!(later.load(Ordering::SeqCst), 0);
        assert!(threads.iter().all(|t| !t.is_finished()));
        release.send(()).unwrap();
        first.join().unwrap().unwrap();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(later.load(Ordering::SeqCst), 1);
        assert_eq!(syncs.syncs(), 2);
        assert!(syncs.dirs.lock().unwrap().is_empty());
    }

    #[test]
    fn a_lone_change_syncs_once() {
        let syncs = DirSyncs::default();
        let count = AtomicU64::new(0);
        for _ in 0..3 {
            syncs
                .after_change_with(Path::new("/d"), |_| {
                    count.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert_eq!(syncs.syncs(), 3);
    }

    /// A failed sync fails every change it covered, including those of waiters that shared it,
    /// and only those: the next change gets its own sync.
    #[test]
    fn a_failed_sync_fails_the_changes_it_covered() {
        let syncs = Arc::new(DirSyncs::default());
        let dir = Path::new("/f");
        let (first, release) = hold_a_sync(&syncs, dir);
        // Two changes during the first sync share the next one, which fails.
        let mut threads = Vec::new();
        for _ in 0..2 {
            let syncs = Arc::clone(&syncs);
            threads.push(std::thread::spawn(move || {
                syncs.after_change_with(dir, |_| Err(std::io::Error::other("disk gone")))
            }));
        }
        for _ in 0..3000 {
            if syncs.tickets(dir) == 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        release.send(()).unwrap();
        assert!(first.join().unwrap().is_ok(), "the first sync succeeded");
        for t in threads {
            let err = t.join().unwrap().expect_err("covered by the failed sync");
            assert!(err.to_string().contains("disk gone"), "{err}");
        }
        assert_eq!(syncs.syncs(), 2);
        assert!(syncs.after_change_with(dir, |_| Ok(())).is_ok(), "a later change syncs anew");
    }
}
