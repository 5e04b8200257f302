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

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value as Json};
use sha2::Sha256;

use super::optimistic::{self, retry_on_conflict, written};
use super::webhooks::{self, Hook, Owner};
use super::{keys, new_id};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::queue::WEBHOOKS_QUEUE;
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, SortKey, Value};

/// How long one POST may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest response excerpt kept per attempt.
pub const EXCERPT_BYTES: usize = 1024;
/// Attempts kept per delivery (the oldest are dropped).
const MAX_ATTEMPTS_KEPT: usize = 20;
/// How long delivery records live.
const RETENTION_SECONDS: i64 = 30 * 24 * 3600;
/// Deliveries listed per call.
pub const LIST_LIMIT: usize = 100;
/// Hooks read per page.
const PAGE: usize = 100;

/// What happened, for whom.
#[derive(Debug, Clone)]
pub struct DomainEvent {
    /// Organization.
    pub org: String,
    /// Project.
    pub project: String,
    /// Stack.
    pub stack: String,
    /// Immutable stack id.
    pub stack_id: String,
    /// Event kind (one of [`webhooks::EVENT_KINDS`]).
    pub kind: String,
    /// Who caused it.
    pub user: String,
    /// For update events: id, operation (`update`, `preview`, …), result, version, changes.
    pub update: Option<UpdateInfo>,
}

/// The update an update event is about.
#[derive(Debug, Clone)]
pub struct UpdateInfo {
    /// Update id.
    pub id: String,
    /// `update`, `preview`, `refresh` or `destroy`.
    pub operation: String,
    /// `started`, `succeeded` or `failed`.
    pub result: String,
    /// Stack version it produced.
    pub version: Option<i64>,
    /// Resource changes summary, as JSON.
    pub resource_changes: Option<Json>,
}

/// The update event of an update of `kind` (None for kinds without webhook events such as
/// `import` and `rename`): previews give `preview_*`, the other operations `<kind>_*`.
pub fn update_event_kind(kind: &str, dry_run: bool, result: &str) -> Option<String> {
    let op = if dry_run {
        "preview"
    } else if matches!(kind, "update" | "refresh" | "destroy") {
        kind
    } else {
        return None;
    };
    Some(format!("{op}_{result}"))
}

/// The `Pulumi-Webhook-Kind` of an event kind.
pub fn webhook_kind(event: &str) -> &'static str {
    if event.starts_with("stack_") {
        "stack"
    } else if event.starts_with("preview_") {
        "stack_preview"
    } else if event == "ping" {
        "ping"
    } else {
        "stack_update"
    }
}

impl DomainEvent {
    /// The raw payload, shaped like Pulumi Cloud's stack and update webhook payloads.
    pub fn payload(&self) -> Json {
        let mut p = json!({
            "user": {"name": self.user, "githubLogin": self.user, "avatarUrl": ""},
            "organization": {"id": self.org, "name": self.org, "githubLogin": self.org,
                             "avatarUrl": ""},
            "projectName": self.project,
            "stackName": self.stack,
        });
        match &self.update {
            None => {
                p["action"] = json!(self.kind.strip_prefix("stack_").unwrap_or(&self.kind));
            }
            Some(u) => {
                p["kind"] = json!(u.operation);
                p["result"] = json!(u.result);
                p["updateId"] = json!(u.id);
                if let Some(v) = u.version {
                    p["version"] = json!(v);
                }
                if let Some(c) = &u.resource_changes {
                    p["resourceChanges"] = c.clone();
                }
            }
        }
        p
    }
}

/// One queue message: a delivery of one event to one hook.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMessage {
    /// Unique per (hook, event); the `Pulumi-Webhook-ID` header.
    pub delivery_id: String,
    /// Organization of the hook.
    pub org: String,
    /// Sort key of the hook under [`keys::hooks_pk`].
    pub hook_sk: String,
    /// Event kind.
    pub event: String,
    /// The raw payload.
    pub payload: Json,
}

/// A fresh delivery id; ids sort by creation time (the app clock's seconds and microseconds,
/// read at once so that two ids of one process never sort out of order).
pub fn new_delivery_id(clock: &crate::app::Clock) -> String {
    let (secs, micros) = clock.now_micros();
    format!("{secs:010}{micros:06}-{}", &new_id()[..8])
}

/// Partition of a hook's deliveries.
pub fn deliveries_pk(org: &str, hook_sk: &str) -> String {
    format!("HOOKDELIVERIES#{org}#{hook_sk}")
}

fn delivery_sk(id: &str) -> String {
    format!("DELIVERY#{id}")
}

/// The sort key of a hook of `owner` named `name`.
pub fn hook_sk(owner: &Owner, name: &str) -> String {
    match owner {
        Owner::Org { .. } => format!("{}{name}", keys::ORG_HOOK_PREFIX),
        Owner::Stack { stack_id, .. } => format!("{}{name}", keys::stack_hook_prefix(stack_id)),
    }
}

/// The owner a hook sort key belongs to, if the key is well formed (names of a stack owner are
/// left empty: deliveries only check the key).
fn owner_of(org: &str, hook_sk: &str) -> Option<Owner> {
    if hook_sk.starts_with(keys::ORG_HOOK_PREFIX) {
        return Some(Owner::Org { org: org.to_string() });
    }
    let rest = hook_sk.strip_prefix("STACK#")?;
    let (stack_id, _) = rest.split_once('#')?;
    Some(Owner::Stack {
        org: org.to_string(),
        project: String::new(),
        stack: String::new(),
        stack_id: stack_id.to_string(),
    })
}

/// Enqueues a delivery of the event to every matching active hook of the stack and its
/// organization. Never fails: problems are logged and the event is not delivered.
pub async fn emit(app: &App, event: &DomainEvent) {
    match try_emit(app, event).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(event = %event.kind, deliveries = n, "webhook deliveries queued"),
        Err(e) => tracing::warn!(
            event = %event.kind, stack = %event.stack_id, error = %e,
            "could not queue webhook deliveries"
        ),
    }
}

async fn try_emit(app: &App, event: &DomainEvent) -> Result<usize> {
    let stack_prefix = keys::stack_hook_prefix(&event.stack_id);
    let meta = app.ports.meta.as_ref();
    let mut query = Query {
        pk: keys::hooks_pk(&event.org),
        sk: SortKey::All,
        ascending: true,
        limit: PAGE,
        after: None,
    };
    let mut targets = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        for item in &page.items {
            if !(item.sk.starts_with(keys::ORG_HOOK_PREFIX) || item.sk.starts_with(&stack_prefix)) {
                continue;
            }
            match webhooks::Hook::from_item(item) {
                Ok(h) if h.wants(&event.kind) => targets.push(item.sk.clone()),
                Ok(_) => {}
                Err(e) => tracing::warn!(hook = %item.sk, error = %e, "skipping a corrupt hook"),
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    if targets.is_empty() {
        return Ok(0);
    }
    let payload = event.payload();
    let mut sent = 0;
    for sk in targets {
        let msg = DeliveryMessage {
            delivery_id: new_delivery_id(&app.clock),
            org: event.org.clone(),
            hook_sk: sk.clone(),
            event: event.kind.clone(),
            payload: payload.clone(),
        };
        let body = serde_json::to_string(&msg).map_err(|e| Error::Internal(e.to_string()))?;
        match app.ports.queue.send(WEBHOOKS_QUEUE, &body, Duration::ZERO).await {
            Ok(_) => sent += 1,
            Err(e) => tracing::warn!(hook = %sk, error = %e, "could not queue a webhook delivery"),
        }
    }
    Ok(sent)
}

/// The payload of a ping.
pub fn ping_payload(owner: &Owner, user: &str) -> Json {
    let mut p = json!({
        "message": "Just a friendly ping from Stackhouse",
        "user": {"name": user, "githubLogin": user, "avatarUrl": ""},
        "organization": {"id": owner_org(owner), "name": owner_org(owner),
                         "githubLogin": owner_org(owner), "avatarUrl": ""},
    });
    if let Owner::Stack { project, stack, .. } = owner {
        p["projectName"] = json!(project);
        p["stackName"] = json!(stack);
    }
    p
}

/// Pings a hook now (not through the queue) and returns the recorded delivery.
pub async fn ping(app: &App, owner: &Owner, name: &str, user: &str) -> Result<Delivery> {
    webhooks::get(app.ports.meta.as_ref(), owner, name).await?;
    let msg = DeliveryMessage {
        delivery_id: new_delivery_id(&app.clock),
        org: owner_org(owner).to_string(),
        hook_sk: hook_sk(owner, name),
        event: "ping".into(),
        payload: ping_payload(owner, user),
    };
    let body = to_json(&msg)?;
    deliver(app, &body).await?;
    get(app.ports.meta.as_ref(), owner, name, &msg.delivery_id).await
}

/// Sends an earlier delivery's event again, as a new delivery through the queue. Returns the
/// new delivery (queued, not attempted yet).
pub async fn redeliver(app: &App, owner: &Owner, name: &str, id: &str) -> Result<Delivery> {
    let meta = app.ports.meta.as_ref();
    webhooks::get(meta, owner, name).await?;
    let old = get(meta, owner, name, id).await?;
    let new_id = enqueue(app, owner, name, &old.event, old.payload.clone()).await?;
    Ok(Delivery {
        id: new_id,
        event: old.event,
        kind: old.kind,
        payload: old.payload,
        timestamp: app.clock.now(),
        delivered: false,
        attempts: Vec::new(),
        rev: 0,
        claim_until: None,
    })
}

/// Enqueues a new delivery of `event` to one hook (ping, redeliver). Returns its id.
pub async fn enqueue(
    app: &App,
    owner: &Owner,
    name: &str,
    event: &str,
    payload: Json,
) -> Result<String> {
    let msg = DeliveryMessage {
        delivery_id: new_delivery_id(&app.clock),
        org: owner_org(owner).to_string(),
        hook_sk: hook_sk(owner, name),
        event: event.to_string(),
        payload,
    };
    let body = serde_json::to_string(&msg).map_err(|e| Error::Internal(e.to_string()))?;
    app.ports
        .queue
        .send(WEBHOOKS_QUEUE, &body, Duration::ZERO)
        .await
        .map_err(|e| Error::Unavailable(format!("could not queue the delivery: {e}")))?;
    Ok(msg.delivery_id)
}

fn owner_org(owner: &Owner) -> &str {
    match owner {
        Owner::Org { org } | Owner::Stack { org, .. } => org,
    }
}

/// One POST of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When it started (Unix seconds).
    pub timestamp: i64,
    /// HTTP status, when an answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How long it took.
    pub latency_ms: u64,
    /// The start of the response body (at most 1 KiB).
    pub response_excerpt: String,
    /// What went wrong, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A delivery as stored and listed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Delivery id.
    pub id: String,
    /// Event kind.
    pub event: String,
    /// `Pulumi-Webhook-Kind`.
    pub kind: String,
    /// The raw payload.
    pub payload: Json,
    /// First attempt (Unix seconds).
    pub timestamp: i64,
    /// Whether an attempt got a 2xx.
    pub delivered: bool,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// Revision (optimistic concurrency); not part of replies' meaning.
    #[serde(skip)]
    pub rev: i64,
    /// Until when an attempt in progress holds it.
    #[serde(skip)]
    pub claim_until: Option<i64>,
}

impl Delivery {
    fn from_item(item: &Item) -> Result<Delivery> {
        let corrupt =
            |w: &str| Error::Internal(format!("delivery {} {} lacks {w}", item.pk, item.sk));
        Ok(Delivery {
            id: item.sk.strip_prefix("DELIVERY#").unwrap_or(&item.sk).to_string(),
            event: item.s("event").ok_or_else(|| corrupt("event"))?.to_string(),
            kind: item.s("kind").unwrap_or_default().to_string(),
            payload: serde_json::from_str(item.s("payload").unwrap_or("null"))
                .map_err(|_| corrupt("a payload"))?,
            timestamp: item.n("created").unwrap_or(0),
            delivered: item.bool("delivered").unwrap_or(false),
            attempts: serde_json::from_str(item.s("attempts").unwrap_or("[]"))
                .map_err(|_| corrupt("attempts"))?,
            rev: item.n("rev").unwrap_or(0),
            claim_until: item.n("claim_until"),
        })
    }

    fn to_item(&self, pk: &str) -> Result<Item> {
        let mut item = Item::new(pk, delivery_sk(&self.id))
            .with("event", Value::S(self.event.clone()))
            .with("kind", Value::S(self.kind.clone()))
            .with("payload", Value::S(to_json(&self.payload)?))
            .with("created", Value::N(self.timestamp))
            .with("delivered", Value::Bool(self.delivered))
            .with("attempts", Value::S(to_json(&self.attempts)?))
            .with("rev", Value::N(self.rev))
            .with(crate::ports::metadata::TTL_ATTR, Value::N(self.timestamp + RETENTION_SECONDS));
        if let Some(c) = self.claim_until {
            item.set("claim_until", Value::N(c));
        }
        Ok(item)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

/// The newest deliveries of a hook, newest first.
pub async fn list(meta: &dyn MetadataStore, owner: &Owner, name: &str) -> Result<Vec<Delivery>> {
    let pk = deliveries_pk(owner_org(owner), &hook_sk(owner, name));
    let page = meta
        .query(Query {
            pk,
            sk: SortKey::BeginsWith("DELIVERY#".into()),
            ascending: false,
            limit: LIST_LIMIT,
            after: None,
        })
        .await?;
    page.items.iter().map(Delivery::from_item).collect()
}

/// One delivery of a hook; 404 when absent.
pub async fn get(
    meta: &dyn MetadataStore,
    owner: &Owner,
    name: &str,
    id: &str,
) -> Result<Delivery> {
    let pk = deliveries_pk(owner_org(owner), &hook_sk(owner, name));
    let item = meta
        .get(&pk, &delivery_sk(id))
        .await?
        .ok_or_else(|| Error::NotFound(format!("delivery '{id}' not found")))?;
    Delivery::from_item(&item)
}

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

/// Handles one queue message body (see the module documentation).
pub async fn deliver(app: &App, body: &str) -> Result<Outcome> {
    let msg: DeliveryMessage = serde_json::from_str(body)
        .map_err(|e| Error::BadRequest(format!("not a webhook delivery message: {e}")))?;
    if owner_of(&msg.org, &msg.hook_sk).is_none() {
        return Err(Error::BadRequest(format!("bad hook key {}", msg.hook_sk)));
    }
    let meta = app.ports.meta.as_ref();
    let Some(hook_item) = meta.get(&keys::hooks_pk(&msg.org), &msg.hook_sk).await? else {
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
    serde_json::to_vec(&value).map_err(|e| Error::Internal(e.to_string()))
}

fn slack_text(msg: &DeliveryMessage) -> String {
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
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|e| Error::Internal(format!("HMAC key: {e}")))?;
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

async fn post(app: &App, hook: &Hook, msg: &DeliveryMessage, secret: Option<&[u8]>) -> Attempt {
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

fn describe(e: &reqwest::Error) -> String {
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
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned();
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// A client that connects only to the checked addresses of the URL's host, never follows
/// redirects and gives up after [`DELIVERY_TIMEOUT`].
async fn client_for(
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
        match deliver(app, &m.body).await {
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
