//! Journal replay (docs/PROTOCOL-NOTES.md, Journal): rebuilds a deployment from a base
//! deployment plus the journal entries the CLI sends with `PATCH .../journalentries` when the
//! update was started with `journalVersion: 1`.
//!
//! The rules follow Pulumi's `JournalReplayer` (`pkg/backend/journal.go`) one for one; the
//! places where this implementation is deliberately stricter or more forward-compatible are
//! marked "Divergence" below. Resources stay the JSON text they came as (`resource`), and
//! operations, snippets and secrets providers stay `serde_json::Value`s, so fields this server
//! does not know about survive the round trip; only the entry envelope is typed.
//!
//! The CLI allocates `sequenceID`s before it encrypts an entry and enqueues it, so entries of
//! steps that run in parallel can reach the batcher (and therefore the server) slightly out of
//! order, even across batches. [`Replayer::apply`] therefore applies entries strictly in
//! `sequenceID` order, buffering any that arrive after a gap until the gap is filled, and
//! ignores sequence IDs it has already seen so that retried batches are harmless.

mod entry;
mod replay;
mod resource;
mod snapshot;
#[cfg(test)]
mod tests;

pub use entry::{EntryKind, JournalEntry, JournalError};
pub use replay::Replayer;
pub use snapshot::{Encoded, Snapshot};

/// The only journal entry format version this module understands.
pub const JOURNAL_ENTRY_VERSION: i64 = 1;
/// Deployment schema version used when no feature needs the newer schema.
pub const DEPLOYMENT_VERSION_CURRENT: i64 = 3;
/// Deployment schema version used (with a `features` list) when any feature is in use.
pub const DEPLOYMENT_VERSION_LATEST: i64 = 4;
