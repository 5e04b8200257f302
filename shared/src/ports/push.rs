//! Push port: frames sent to clients connected over WebSocket (the event stream). On AWS, API
//! Gateway's WebSocket API holds the sockets and the adapter posts through its management API;
//! locally, the emulator's own WebSocket server holds them in process (`adapters::embedded::Hub`).

use async_trait::async_trait;

/// Errors of the push port.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The client is no longer connected (API Gateway's `GoneException`, a closed socket, a
    /// client too slow to keep up): its connection records can go.
    #[error("connection {0} is gone")]
    Gone(String),
    /// The gateway could not be reached or failed; the frame may be sent again.
    #[error("push unavailable: {0}")]
    Unavailable(String),
    /// The function was built without this port (see `adapters::undeclared`).
    #[error("{0}")]
    Undeclared(String),
}

/// Where frames for connected clients go.
#[async_trait]
pub trait Push: Send + Sync {
    /// Sends one text frame to a connection; frames sent one after another to one connection
    /// arrive in that order.
    async fn send(&self, connection: &str, frame: &str) -> Result<(), PushError>;
    /// Closes a connection from the server's side (its client sees the socket close).
    async fn close(&self, connection: &str) -> Result<(), PushError>;
}
