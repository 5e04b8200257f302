//! Domain events and their fan-out: one queue message per matching active hook.

use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::app::App;
use crate::error::{Error, Result};
use crate::names::StackId;
use crate::ports::queue::WEBHOOKS_QUEUE;
use crate::ports::{Query, SortKey};
use crate::service::item_keys;
use crate::service::webhooks::{self};

use super::records::{new_delivery_id, DeliveryMessage, PAGE};

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
    pub stack_id: StackId,
    /// Event kind (one of [`webhooks::EVENT_KINDS`]).
    pub kind: String,
    /// Who caused it.
    pub user: String,
    /// For update events: id, operation (`update`, `preview`, …), result, version, changes.
    pub update: Option<UpdateInfo>,
    /// For deployment events: the run.
    pub deployment: Option<DeploymentInfo>,
}

/// The deployment run a deployment event is about.
#[derive(Debug, Clone)]
pub struct DeploymentInfo {
    pub id: String,
    /// Its version on the stack.
    pub version: i64,
    /// `update`, `preview`, `refresh`, `destroy`, `detect-drift`, `remediate-drift`.
    pub operation: String,
    /// `not-started`, `running`, `succeeded`, `failed`.
    pub status: String,
    /// Why it failed.
    pub message: Option<String>,
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
    } else if event.starts_with("deployment_") {
        "deployment"
    } else if event.starts_with("drift_") {
        "drift"
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
        if let Some(d) = &self.deployment {
            p["deploymentId"] = json!(d.id);
            p["version"] = json!(d.version);
            p["pulumiOperation"] = json!(d.operation);
            p["status"] = json!(d.status);
            if let Some(m) = &d.message {
                p["message"] = json!(m);
            }
            return p;
        }
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

pub(super) async fn try_emit(app: &App, event: &DomainEvent) -> Result<usize> {
    let stack_prefix = item_keys::stack_hook_prefix(&event.stack_id);
    let meta = app.ports.meta.as_ref();
    let mut query = Query {
        pk: item_keys::hooks_pk(&event.org),
        sk: SortKey::All,
        ascending: true,
        limit: PAGE,
        after: None,
    };
    let mut targets = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        for item in &page.items {
            if !(item.sk.starts_with(item_keys::ORG_HOOK_PREFIX)
                || item.sk.starts_with(&stack_prefix))
            {
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
        let body = serde_json::to_string(&msg).map_err(|e| Error::caused("JSON encoding", e))?;
        match app.ports.queue.send(WEBHOOKS_QUEUE, &body, Duration::ZERO).await {
            Ok(_) => sent += 1,
            Err(e) => tracing::warn!(hook = %sk, error = %e, "could not queue a webhook delivery"),
        }
    }
    Ok(sent)
}
