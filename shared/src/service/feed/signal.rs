//! Wakes this process's waiting readers when an event is appended here, so a long-poll in the
//! emulator (or in the Lambda sandbox that wrote the event) answers at once. Readers in other
//! processes (other Lambda functions) poll instead ([`super::read::POLL`]).

use tokio::sync::watch;

/// A counter of events appended by this process, watched by waiting readers.
#[derive(Debug)]
pub struct Signal(watch::Sender<u64>);

impl Default for Signal {
    fn default() -> Self {
        Signal(watch::Sender::new(0))
    }
}

impl Signal {
    /// Tells every waiting reader that an event was appended.
    pub fn appended(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every append after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
