//! Webhook deliveries: domain events become queue messages, one per matching hook,
//! and `job-webhook-deliver` POSTs them.
//!
//! * [`emit`] (stack created/deleted, update started/ended) reads the organization's hooks
//!   partition with **one query** (more pages only past 100 hooks in the organization) and sends
//!   **one queue message per matching active hook**; nothing else. Without hooks an event costs
//!   that one query and no queue call. It never fails its caller: errors are logged.
//! * [`deliver`] handles one message: it skips a delivery already made (idempotent under
//!   at-least-once delivery), claims it for the length of one attempt so that a concurrent
//!   redelivery of the same message waits instead of sending twice, POSTs it with a 10 s
//!   timeout and no redirects, and records the attempt (status, latency, response excerpt of at
//!   most 1 KiB, error) on the delivery item under the hook. A non-2xx answer or a transport
//!   error fails the message, which the queue plumbing retries with backoff and dead-letters
//!   after the `webhooks` queue's `max_receives`.
//! * Before connecting, the target's host is resolved and every address checked
//!   ([`super::webhooks::is_internal`]) unless loopback is allowed; the connection is pinned to
//!   the checked addresses, so a DNS answer cannot redirect a hook to an internal service.

mod events;
mod records;
mod send;

pub use events::{emit, update_event_kind, webhook_kind, DeploymentInfo, DomainEvent, UpdateInfo};
pub use records::{
    deliveries_pk, enqueue, get, hook_sk, list, new_delivery_id, ping, ping_payload, redeliver,
    Attempt, Delivery, DeliveryMessage, LIST_LIMIT,
};
pub use send::{
    deliver, deliver_batch, render_body, signature, Outcome, DELIVERY_TIMEOUT, EXCERPT_BYTES,
};
