//! The push port in one process: the emulator's WebSocket server attaches each socket here and
//! writes out what arrives on its channel; the service pushes to it by connection id exactly
//! as it posts to API Gateway's management API on AWS.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::ports::{Push, PushError};

/// Frames a socket may have waiting before it counts as too slow and is closed (as API
/// Gateway drops a client that does not read). Its client reconnects with its last `seq`.
pub const BACKLOG_FRAMES: usize = 4096;

/// What a socket's writer is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Send this text frame.
    Text(String),
    /// Close the socket.
    Close,
}

/// The sockets of this process, by connection id.
#[derive(Debug, Default)]
pub struct Hub {
    sockets: Mutex<HashMap<String, mpsc::Sender<Frame>>>,
}

impl Hub {
    /// Attaches a socket: frames pushed to `connection` arrive on the returned receiver.
    pub fn attach(&self, connection: &str) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(BACKLOG_FRAMES);
        self.lock().insert(connection.to_string(), tx);
        rx
    }

    /// Detaches a socket (it closed); later pushes to it are `Gone`.
    pub fn detach(&self, connection: &str) {
        self.lock().remove(connection);
    }

    /// How many sockets are attached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no socket is attached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Frame>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, connection: &str, frame: Frame) -> Result<(), PushError> {
        let gone = || PushError::Gone(connection.to_string());
        let tx = self.lock().get(connection).cloned().ok_or_else(gone)?;
        match tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Too slow: closed rather than buffered without bound.
                self.detach(connection);
                Err(gone())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.detach(connection);
                Err(gone())
            }
        }
    }
}

#[async_trait]
impl Push for Hub {
    async fn send(&self, connection: &str, frame: &str) -> Result<(), PushError> {
        self.deliver(connection, Frame::Text(frame.to_string()))
    }

    async fn close(&self, connection: &str) -> Result<(), PushError> {
        let sent = self.deliver(connection, Frame::Close);
        self.detach(connection);
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_arrive_in_order_and_unknown_or_slow_sockets_are_gone() {
        let hub = Hub::default();
        let mut rx = hub.attach("c1");
        hub.send("c1", "one").await.unwrap();
        hub.send("c1", "two").await.unwrap();
        assert_eq!(rx.recv().await, Some(Frame::Text("one".into())));
        assert_eq!(rx.recv().await, Some(Frame::Text("two".into())));
        assert!(matches!(hub.send("nobody", "x").await, Err(PushError::Gone(_))));
        // A reader that never reads is closed once its backlog is full.
        let _slow = hub.attach("slow");
        for _ in 0..BACKLOG_FRAMES {
            hub.send("slow", "x").await.unwrap();
        }
        assert!(matches!(hub.send("slow", "x").await, Err(PushError::Gone(_))));
        assert!(matches!(hub.send("slow", "x").await, Err(PushError::Gone(_))));
        hub.close("c1").await.unwrap();
        assert_eq!(rx.recv().await, Some(Frame::Close));
        assert_eq!(hub.len(), 0);
    }
}
