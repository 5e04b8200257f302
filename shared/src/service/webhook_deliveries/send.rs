//! Sending one delivery: claim, POST with a pinned, checked address, record the attempt.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value as Json};
use sha2::Sha256;

use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, MetaError, Value};
use crate::service::item_keys;
use crate::service::optimistic::{self, retry_on_conflict, written};
use crate::service::webhooks::{self, Hook};

use super::events::webhook_kind;
use super::records::{
    deliveries_pk, delivery_sk, owner_of, Attempt, Delivery, DeliveryMessage, MAX_ATTEMPTS_KEPT,
};

/// How long one POST may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest response excerpt kept per attempt.
pub const EXCERPT_BYTES: usize = 1024;

/// What [`deliver`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent and answered with a 2xx.
    Delivered,
    /// Already delivered before, or its hook is gone: nothing sent.
    Skipped,
    /// Another attempt holds it right now: retry later.
    Busy,
    /// Sent (or tried) and failed: retry later.
    Failed,
}

impl Outcome {
    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Skipped => "skipped",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
        }
    }
}

/// Handles one queue message body (see the module documentation).
pub async fn deliver(app: &App, body: &str) -> Result<Outcome> {
    let msg: DeliveryMessage = serde_json::from_str(body)
        .map_err(|e| Error::BadRequest(format!("not a webhook delivery message: {e}")))?;
    if owner_of(&msg.org, &msg.hook_sk).is_none() {
        return Err(Error::BadRequest(format!("bad hook key {}", msg.hook_sk)));
    }
    let meta = app.ports.meta.as_ref();
    let Some(hook_item) = meta.get(&item_keys::hooks_pk(&msg.org), &msg.hook_sk).await? else {
        return Ok(Outcome::Skipped);
    };
    let hook = Hook::from_item(&hook_item)?;
    // A ping is an explicit request: it goes out even while the hook is inactive.
    if !hook.active && msg.event != "ping" {
        return Ok(Outcome::Skipped);
    }
    let pk = deliveries_pk(&msg.org, &msg.hook_sk);
    // Claim: a record that is delivered, or held by a live attempt, is left alone.
    let now = app.clock.now();
    let claim_len = i64::try_from(DELIVERY_TIMEOUT.as_secs()).unwrap_or(10) + 20;
    let current = meta.get(&pk, &delivery_sk(&msg.delivery_id)).await?;
    let mut record = match &current {
        Some(item) => Delivery::from_item(item)?,
        None => Delivery {
            id: msg.delivery_id.clone(),
            event: msg.event.clone(),
            kind: webhook_kind(&msg.event).to_string(),
            payload: msg.payload.clone(),
            timestamp: now,
            delivered: false,
            attempts: Vec::new(),
            rev: 0,
            claim_until: None,
        },
    };
    if record.delivered {
        return Ok(Outcome::Skipped);
    }
    if record.claim_until.is_some_and(|c| c > now) {
        return Ok(Outcome::Busy);
    }
    let cond = match current {
        Some(_) => Condition::Equals("rev".into(), Value::N(record.rev)),
        None => Condition::NotExists,
    };
    record.rev += 1;
    record.claim_until = Some(now + claim_len);
    match meta.put(record.to_item(&pk)?, Some(cond)).await {
        Ok(()) => {}
        Err(MetaError::ConditionFailed) => return Ok(Outcome::Busy),
        Err(e) => return Err(e.into()),
    }

    let attempt = match webhooks::secret_of(app, &hook).await {
        Ok(secret) => post(app, &hook, &msg, secret.as_deref()).await,
        // Recorded like any failed attempt, which also releases the claim.
        Err(e) => Attempt {
            timestamp: now,
            status: None,
            latency_ms: 0,
            response_excerpt: String::new(),
            error: Some(format!("cannot open the hook's secret: {e}")),
        },
    };
    let ok = attempt.error.is_none();
    // Record the attempt and release the claim.
    // Failing to record is logged, not returned: the delivery happened, and a retried message
    // would post it again.
    let recorded = retry_on_conflict!(8, async {
        let item = meta.get(&pk, &delivery_sk(&msg.delivery_id)).await?;
        let Some(item) = item else { return Ok(optimistic::Attempt::Done(())) };
        let mut r = Delivery::from_item(&item)?;
        let read_rev = r.rev;
        r.attempts.push(attempt.clone());
        if r.attempts.len() > MAX_ATTEMPTS_KEPT {
            let extra = r.attempts.len() - MAX_ATTEMPTS_KEPT;
            r.attempts.drain(..extra);
        }
        r.delivered = r.delivered || ok;
        r.claim_until = None;
        r.rev = read_rev + 1;
        let cond = Condition::Equals("rev".into(), Value::N(read_rev));
        written(meta.put(r.to_item(&pk)?, Some(cond)).await, ())
    });
    match recorded {
        Ok(Some(())) => {}
        Ok(None) => tracing::warn!(delivery = %msg.delivery_id, "attempt not recorded: contended"),
        Err(e) => tracing::warn!(delivery = %msg.delivery_id, error = %e, "attempt not recorded"),
    }
    Ok(if ok { Outcome::Delivered } else { Outcome::Failed })
}

/// The body a hook of `format` gets for the message.
pub fn render_body(format: &str, msg: &DeliveryMessage) -> Result<Vec<u8>> {
    let value =
        if format == "slack" { json!({ "text": slack_text(msg) }) } else { msg.payload.clone() };
    serde_json::to_vec(&value).map_err(|e| Error::caused("JSON encoding", e))
}

pub(super) fn slack_text(msg: &DeliveryMessage) -> String {
    let p = &msg.payload;
    let s = |k: &str| p.get(k).and_then(Json::as_str).unwrap_or("").to_string();
    let org = p.pointer("/organization/name").and_then(Json::as_str).unwrap_or(&msg.org);
    let user = p.pointer("/user/name").and_then(Json::as_str).unwrap_or("someone");
    let stack = format!("{org}/{}/{}", s("projectName"), s("stackName"));
    if msg.event == "ping" {
        return format!("Ping from Stackhouse for {stack}");
    }
    match msg.event.split_once('_') {
        Some(("stack", action)) => format!("{user} {action} stack {stack}"),
        Some((op, result)) => format!("{op} of {stack} by {user}: {result}"),
        None => format!("{} on {stack}", msg.event),
    }
}

/// hex(HMAC-SHA256(secret, body)).
pub fn signature(secret: &[u8], body: &[u8]) -> Result<String> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|e| Error::caused("HMAC key", e))?;
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

pub(super) async fn post(
    app: &App,
    hook: &Hook,
    msg: &DeliveryMessage,
    secret: Option<&[u8]>,
) -> Attempt {
    let started = Instant::now();
    let timestamp = app.clock.now();
    let fail = |error: String, status: Option<u16>, excerpt: String| Attempt {
        timestamp,
        status,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        response_excerpt: excerpt,
        error: Some(error),
    };
    let body = match render_body(&hook.format, msg) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string(), None, String::new()),
    };
    let client = match client_for(&hook.payload_url, app.settings.webhook_allow_loopback).await {
        Ok(c) => c,
        Err(e) => return fail(e, None, String::new()),
    };
    let mut req = client
        .post(&hook.payload_url)
        .header("content-type", "application/json")
        .header("user-agent", "Stackhouse-Webhooks/1")
        .header("Pulumi-Webhook-Kind", webhook_kind(&msg.event))
        .header("Pulumi-Webhook-ID", &msg.delivery_id);
    if let Some(secret) = secret {
        match signature(secret, &body) {
            Ok(sig) => req = req.header("Pulumi-Webhook-Signature", sig),
            Err(e) => return fail(e.to_string(), None, String::new()),
        }
    }
    let resp = match req.body(body).send().await {
        Ok(r) => r,
        Err(e) => return fail(describe(&e), None, String::new()),
    };
    let status = resp.status();
    let excerpt = match resp.bytes().await {
        Ok(b) => excerpt(&b),
        Err(e) => return fail(describe(&e), Some(status.as_u16()), String::new()),
    };
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Attempt {
        timestamp,
        status: Some(status.as_u16()),
        latency_ms,
        response_excerpt: excerpt,
        error: (!status.is_success()).then(|| format!("HTTP {status}")),
    }
}

pub(super) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("timed out after {} s", DELIVERY_TIMEOUT.as_secs())
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

/// At most [`EXCERPT_BYTES`] of the body, cut on a character boundary.
pub(super) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned();
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// A client that connects only to the checked addresses of the URL's host, never follows
/// redirects and gives up after [`DELIVERY_TIMEOUT`].
pub(super) async fn client_for(
    raw: &str,
    allow_internal: bool,
) -> std::result::Result<reqwest::Client, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("bad payload URL: {e}"))?;
    let host = url.host_str().ok_or("the payload URL has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("the payload URL has no port")?;
    let mut builder = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(url::Host::Domain(domain)) = url.host() {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((domain, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no addresses"));
        }
        if !allow_internal && addrs.iter().any(|a| webhooks::is_internal(a.ip())) {
            return Err(format!("{host} resolves to an internal address; refused"));
        }
        builder = builder.resolve_to_addrs(domain, &addrs);
    } else if let Some(ip) = url.host_str().and_then(|h| {
        h.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok()
    }) {
        if !allow_internal && webhooks::is_internal(ip) {
            return Err(format!("{ip} is an internal address; refused"));
        }
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// `job-webhook-deliver`: delivers a batch; returns the ids of the messages to retry.
pub async fn deliver_batch(app: &App, messages: Vec<crate::ports::Message>) -> Vec<String> {
    let mut failed = Vec::new();
    for m in messages {
        let outcome = deliver(app, &m.body).await;
        // `error`: the message could not be handled at all (store unavailable, bad message).
        app.metrics.observe_delivery(outcome.as_ref().map_or("error", |o| o.name()));
        match outcome {
            Ok(Outcome::Delivered | Outcome::Skipped) => {}
            Ok(outcome) => {
                tracing::info!(message = %m.id, ?outcome, "webhook delivery to retry");
                failed.push(m.id);
            }
            Err(e) => {
                tracing::warn!(message = %m.id, error = %e, "webhook delivery failed");
                failed.push(m.id);
            }
        }
    }
    failed
}
