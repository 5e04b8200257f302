//! What readers of the event stream receive: an event as the long-poll answers it and as the
//! WebSocket sends it, and the WebSocket's other frames.

use serde::Serialize;
use serde_json::{json, value::RawValue};

use super::Event;

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "OrgEvent"))]
#[serde(rename_all = "camelCase")]
pub struct WireEvent {
    /// Position in the organization's stream, from 1, without gaps.
    pub seq: i64,
    /// Unix seconds.
    timestamp: i64,
    /// What happened: the route's name (`stack-create`, …) or `update-ended`.
    kind: String,
    /// Who did it.
    actor: String,
    /// The request path.
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
    /// Details (for `update-ended`: `updateId`, `kind`, `result`, `version`).
    #[cfg_attr(feature = "openapi", schemars(with = "serde_json::Map<String, serde_json::Value>"))]
    payload: serde_json::Value,
}

impl From<Event> for WireEvent {
    fn from(e: Event) -> WireEvent {
        let (project, stack) = match e.stack {
            Some(s) => (Some(s.project), Some(s.stack)),
            None => (None, None),
        };
        WireEvent {
            seq: e.seq,
            timestamp: e.time_us.div_euclid(1_000_000),
            kind: e.kind,
            actor: e.actor,
            path: e.path,
            project,
            stack,
            payload: e.payload,
        }
    }
}

/// A persistent event as a WebSocket frame: its [`WireEvent`] fields and `"type": "event"`.
pub fn event_frame(event: &Event) -> String {
    let mut v = serde_json::to_value(WireEvent::from(event.clone())).unwrap_or_else(|_| json!({}));
    v["type"] = json!("event");
    v.to_string()
}

/// An ephemeral frame: the engine events of one `events/batch` of a running update, sent to
/// its watchers as they arrive and never stored in the stream (the update's own event log keeps
/// them: `GET …/events`).
pub fn engine_events_frame(update_id: &str, events: &[&RawValue]) -> String {
    json!({"type": "engine-events", "ephemeral": true, "updateId": update_id, "events": events})
        .to_string()
}

/// The answer to a client's `{"action": "ping"}`.
pub fn pong_frame() -> String {
    json!({"type": "pong", "ephemeral": true}).to_string()
}

/// The answer to a message the server does not understand.
pub fn error_frame(message: &str) -> String {
    json!({"type": "error", "ephemeral": true, "message": message}).to_string()
}

/// Sent before the server closes a connection (its access was revoked, its organization is
/// gone), so the client knows not to reconnect as it was.
pub fn closing_frame(reason: &str) -> String {
    json!({"type": "closing", "ephemeral": true, "reason": reason}).to_string()
}
