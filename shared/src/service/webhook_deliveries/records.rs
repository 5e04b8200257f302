//! Delivery messages and the delivery records kept under each hook: enqueueing, pings,
//! redeliveries, listing.

use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::queue::WEBHOOKS_QUEUE;
use crate::ports::{Item, MetadataStore, Query, SortKey, Value};
use crate::service::webhooks::{self, Owner};
use crate::service::{item_keys, new_id};

use super::send::deliver;

/// Attempts kept per delivery (the oldest are dropped).
pub(super) const MAX_ATTEMPTS_KEPT: usize = 20;

/// How long delivery records live.
pub(super) const RETENTION_SECONDS: i64 = 30 * 24 * 3600;

/// Deliveries listed per call.
pub const LIST_LIMIT: usize = 100;

/// Hooks read per page.
pub(super) const PAGE: usize = 100;

/// One queue message: a delivery of one event to one hook.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMessage {
    /// Unique per (hook, event); the `Pulumi-Webhook-ID` header.
    pub delivery_id: String,
    /// Organization of the hook.
    pub org: String,
    /// Sort key of the hook under [`item_keys::hooks_pk`].
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

pub(super) fn delivery_sk(id: &str) -> String {
    format!("DELIVERY#{id}")
}

/// The sort key of a hook of `owner` named `name`.
pub fn hook_sk(owner: &Owner, name: &str) -> String {
    match owner {
        Owner::Org { .. } => format!("{}{name}", item_keys::ORG_HOOK_PREFIX),
        Owner::Stack { stack_id, .. } => {
            format!("{}{name}", item_keys::stack_hook_prefix(stack_id))
        }
    }
}

/// The owner a hook sort key belongs to, if the key is well formed (names of a stack owner are
/// left empty: deliveries only check the key).
pub(super) fn owner_of(org: &str, hook_sk: &str) -> Option<Owner> {
    if hook_sk.starts_with(item_keys::ORG_HOOK_PREFIX) {
        return Some(Owner::Org { org: org.to_string() });
    }
    let rest = hook_sk.strip_prefix("STACK#")?;
    let (stack_id, _) = rest.split_once('#')?;
    Some(Owner::Stack {
        org: org.to_string(),
        project: String::new(),
        stack: String::new(),
        stack_id: crate::names::StackId::from_stored(stack_id),
    })
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
    let body = serde_json::to_string(&msg).map_err(|e| Error::caused("JSON encoding", e))?;
    app.ports
        .queue
        .send(WEBHOOKS_QUEUE, &body, Duration::ZERO)
        .await
        .map_err(|e| Error::Unavailable(format!("could not queue the delivery: {e}")))?;
    Ok(msg.delivery_id)
}

pub(super) fn owner_org(owner: &Owner) -> &str {
    match owner {
        Owner::Org { org } | Owner::Stack { org, .. } => org,
    }
}

/// One POST of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "DeliveryAttempt"))]
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
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "WebhookDelivery"))]
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
    pub(super) fn from_item(item: &Item) -> Result<Delivery> {
        let corrupt =
            |w: &str| Error::internal(format!("delivery {} {} lacks {w}", item.pk, item.sk));
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

    pub(super) fn to_item(&self, pk: &str) -> Result<Item> {
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

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::caused("JSON encoding", e))
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
