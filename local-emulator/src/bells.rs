//! Queue bells: the emulator's queue consumers poll every `idle_poll` (a second) while their
//! queue is empty, as cheap as that is; a message sent in this process rings its queue's bell
//! so that its consumer polls at once, as Lambda's SQS event source (long polling) delivers
//! within milliseconds. A run of `POST …/deployments` went from ~0.95 s to ~30 ms before its
//! runner started (docs/BENCHMARKS.md, "Deployment runs"). Messages sent with a delay, or by
//! another process, wait for the next poll, which is no worse than before.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use stackhouse::ports::queue::{Message, Queue, QueueDepth, QueueError};
use tokio::sync::watch;

/// One bell per queue name, for every server of this process (tests run many: a ring only
/// makes another server's consumer poll once more).
static BELLS: LazyLock<Mutex<HashMap<String, watch::Sender<u64>>>> = LazyLock::new(Mutex::default);

fn with_bell<T>(queue: &str, f: impl FnOnce(&watch::Sender<u64>) -> T) -> T {
    let mut bells = BELLS.lock().unwrap_or_else(|p| p.into_inner());
    let bell = bells.entry(queue.to_string()).or_insert_with(|| watch::channel(0).0);
    f(bell)
}

/// Rings `queue`'s bell.
pub fn ring(queue: &str) {
    with_bell(queue, |bell| bell.send_modify(|rings| *rings = rings.wrapping_add(1)));
}

/// Listens to `queue`'s bell: `changed()` returns once it rang after this call (or after the
/// last `borrow_and_update`), so a ring while the consumer polls is not missed.
pub fn listen(queue: &str) -> watch::Receiver<u64> {
    with_bell(queue, |bell| bell.subscribe())
}

/// A queue port whose sends (without delay) ring their queue's bell.
pub struct Ringing(pub Arc<dyn Queue>);

#[async_trait::async_trait]
impl Queue for Ringing {
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> Result<String, QueueError> {
        let id = self.0.send(queue, body, delay).await?;
        if delay.is_zero() {
            ring(queue);
        }
        Ok(id)
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        self.0.receive(queue, max, visibility).await
    }

    async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        self.0.ack(queue, receipt).await
    }

    async fn set_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        self.0.set_visibility(queue, receipt, visibility).await
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        self.0.depth(queue).await
    }
}
