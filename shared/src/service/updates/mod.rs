//! Updates (up, preview, refresh, destroy): creation, the lease that makes one update the only
//! writer of its stack, checkpoints, completion, cancellation and recovery of abandoned updates
//! (docs/PROTOCOL-NOTES.md: Update lifecycle, Leases, Checkpoints; docs/ARCHITECTURE.md,
//! Consistency and crash safety).
//!
//! One item per update under the stack's immutable id. The stack item names its active update;
//! every change to the pair is one transaction conditioned on both revisions, so a start, a
//! renew, a complete and a cancel racing each other serialise cleanly.

mod batches;
mod chain;
mod checkpoint;
mod lease;
mod lifecycle;
mod model;
mod publish;

pub use batches::save_journal;
pub(crate) use batches::{journal_prefix, read_batch};
pub use chain::RecentStates;
pub use checkpoint::{record_resource_changes, save_checkpoint, save_sequenced, Sequenced};
pub use lease::{authenticate_lease, lease_refused, live_update, renew};
pub use lifecycle::{cancel, create, finalize, finalize_expired, import, start, Program, Started};
pub use model::{get, of_stack, Status, Update, PROGRAM_KINDS};
#[cfg(test)]
mod tests;
