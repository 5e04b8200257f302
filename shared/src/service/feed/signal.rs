//! Wakes this process's waiting readers when an event is appended here, so a long-poll in the
//! emulator (or in the Lambda sandbox that wrote the event) answers at once. Readers in other
//! processes (other Lambda functions) poll instead ([`super::read::POLL`]).
//!
//! It also remembers which organizations changed (an event appended, a socket connected) until
//! each of the emulator's stream jobs takes them (fan-out, search indexing): what a DynamoDB
//! stream tells those jobs on AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::sync::watch;

/// A counter of events appended by this process, watched by waiting readers, and the
/// organizations changed since each stream job last looked.
#[derive(Debug)]
pub struct Signal {
    appended: watch::Sender<u64>,
    /// By consumer (a job's name): the organizations it has not taken yet.
    changed: Mutex<BTreeMap<&'static str, BTreeSet<String>>>,
}

impl Default for Signal {
    fn default() -> Self {
        Signal { appended: watch::Sender::new(0), changed: Mutex::default() }
    }
}

impl Signal {
    /// Tells every waiting reader that an event of `org` was appended.
    pub fn appended(&self, org: &str) {
        self.mark(org);
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Tells fan-out that a socket of `org` connected (it is owed its backlog).
    pub fn connected(&self, org: &str) {
        self.appended(org);
    }

    /// A receiver that sees every append after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// The organizations changed since `consumer`'s last call, forgetting them for it. The
    /// first call starts keeping them for it.
    pub fn take_changed(&self, consumer: &'static str) -> Vec<String> {
        let mut changed = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(changed.entry(consumer).or_default()).into_iter().collect()
    }

    fn mark(&self, org: &str) {
        let mut changed = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        for orgs in changed.values_mut() {
            if !orgs.contains(org) {
                orgs.insert(org.to_string());
            }
        }
    }
}
