//! Webhooks, shaped like Pulumi Cloud's REST API: hooks of an organization and hooks
//! of a stack, with a payload URL, an optional secret (stored encrypted, never returned), a
//! format (`raw` or `slack`) and event-kind filters (empty = every event).
//!
//! Layout: every hook of an organization, its own and its stacks', lives in one partition
//! ([`item_keys::hooks_pk`]): organization hooks under `ORG#<name>`, stack hooks under
//! `STACK#<stack id>#<name>` (by the stack's immutable id, so a rename keeps its hooks). One
//! query of that partition therefore finds every hook an event of a stack may go to.
//!
//! Secrets are sealed with the envelope encryption of [`super::secrets`]: a stack hook's under
//! its stack's data key, an organization hook's under a data key of its own, bound to a random
//! id made when the hook is created (`orghook-<hex>`; never an organization name, which is not
//! unique across stores as the data-key cache requires).
//!
//! Payload URLs must be `http` or `https`. When the host is an IP literal or `localhost`,
//! loopback, private, link-local, unspecified and other non-global addresses are refused
//! unless [`crate::app::Settings::webhook_allow_loopback`] is set. A DNS name is not resolved
//! when the hook is saved (its addresses may change): the delivery job must check the addresses
//! it actually connects to.

use std::net::{IpAddr, Ipv4Addr};

use super::optimistic::{retry_on_conflict, written};
use super::{item_keys, new_id, secrets};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::StackId;
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, Value};

/// Event kinds a hook may filter on (Pulumi Cloud's stack and update events).
pub const EVENT_KINDS: &[&str] = &[
    "stack_created",
    "stack_deleted",
    "update_started",
    "update_succeeded",
    "update_failed",
    "preview_started",
    "preview_succeeded",
    "preview_failed",
    "refresh_started",
    "refresh_succeeded",
    "refresh_failed",
    "destroy_started",
    "destroy_succeeded",
    "destroy_failed",
    "deployment_queued",
    "deployment_started",
    "deployment_succeeded",
    "deployment_failed",
    "drift_detected",
    "drift_detection_succeeded",
    "drift_detection_failed",
    "drift_remediation_succeeded",
    "drift_remediation_failed",
];

/// Longest hook name, display name and payload URL.
const MAX_NAME: usize = 100;
const MAX_DISPLAY_NAME: usize = 200;
const MAX_URL: usize = 2048;
/// Longest secret, in bytes.
const MAX_SECRET: usize = 1024;
/// Hooks read per page when listing.
const PAGE: usize = 100;

/// Whose hooks: an organization's own, or one stack's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The organization's own hooks.
    Org {
        /// Organization name.
        org: String,
    },
    /// One stack's hooks.
    Stack {
        /// Organization name.
        org: String,
        /// Project name (for replies only).
        project: String,
        /// Stack name (for replies only).
        stack: String,
        /// The stack's immutable id (the key).
        stack_id: StackId,
    },
}

impl Owner {
    fn org(&self) -> &str {
        match self {
            Owner::Org { org } | Owner::Stack { org, .. } => org,
        }
    }

    fn sk_prefix(&self) -> String {
        match self {
            Owner::Org { .. } => item_keys::ORG_HOOK_PREFIX.to_string(),
            Owner::Stack { stack_id, .. } => item_keys::stack_hook_prefix(stack_id),
        }
    }

    /// The id whose data key seals a new hook's secret.
    fn new_key_id(&self) -> String {
        match self {
            Owner::Org { .. } => format!("orghook-{}", new_id()),
            Owner::Stack { stack_id, .. } => stack_id.to_string(),
        }
    }
}

/// A hook as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Unique within its owner; the `{hook}` path parameter.
    pub name: String,
    /// Shown in UIs.
    pub display_name: String,
    /// Where deliveries are POSTed.
    pub payload_url: String,
    /// Whether deliveries are made.
    pub active: bool,
    /// `raw` or `slack`.
    pub format: String,
    /// Event kinds delivered (empty = all).
    pub filters: Vec<String>,
    /// The sealed secret, if any (never returned).
    pub secret: Option<Vec<u8>>,
    /// The id whose data key seals the secret: the stack id for a stack hook, a random id
    /// made for an organization hook (ids must be unique across stores, see
    /// [`super::secrets`], which an organization name is not).
    pub key_id: String,
    /// Optimistic-concurrency revision.
    pub rev: i64,
}

/// The body of create and update (Pulumi Cloud's `Webhook`); every field is optional on
/// update, where an absent field keeps its value and `"secret": ""` removes the secret.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HookRequest {
    /// Must match the path's organization when present.
    pub organization_name: Option<String>,
    /// Must match the path's project when present.
    pub project_name: Option<String>,
    /// Must match the path's stack when present.
    pub stack_name: Option<String>,
    /// The hook's name (generated when absent on create; cannot change on update).
    pub name: Option<String>,
    /// Display name (the name when absent).
    pub display_name: Option<String>,
    /// Payload URL (required on create).
    pub payload_url: Option<String>,
    /// HMAC key of `Pulumi-Webhook-Signature`; write-only.
    pub secret: Option<String>,
    /// Whether deliveries are made (default true).
    pub active: Option<bool>,
    /// `raw` (default) or `slack`.
    pub format: Option<String>,
    /// Event kinds (see [`EVENT_KINDS`]); empty = all.
    pub filters: Option<Vec<String>>,
}

/// The reply shape (Pulumi Cloud's `WebhookResponse`, without the secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    /// Organization.
    pub organization_name: String,
    /// Project, for stack hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// Stack, for stack hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_name: Option<String>,
    /// Name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Payload URL.
    pub payload_url: String,
    /// Active.
    pub active: bool,
    /// Format.
    pub format: String,
    /// Filters.
    pub filters: Vec<String>,
    /// Whether a secret is set.
    pub has_secret: bool,
}

impl Hook {
    /// The reply shape of this hook of `owner`.
    pub fn to_api(&self, owner: &Owner) -> HookResponse {
        let (project_name, stack_name) = match owner {
            Owner::Org { .. } => (None, None),
            Owner::Stack { project, stack, .. } => (Some(project.clone()), Some(stack.clone())),
        };
        HookResponse {
            organization_name: owner.org().to_string(),
            project_name,
            stack_name,
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            payload_url: self.payload_url.clone(),
            active: self.active,
            format: self.format.clone(),
            filters: self.filters.clone(),
            has_secret: self.secret.is_some(),
        }
    }

    fn to_item(&self, owner: &Owner) -> Result<Item> {
        let filters =
            serde_json::to_string(&self.filters).map_err(|e| Error::caused("JSON encoding", e))?;
        let mut item = Item::new(
            item_keys::hooks_pk(owner.org()),
            format!("{}{}", owner.sk_prefix(), self.name),
        )
        .with("name", Value::S(self.name.clone()))
        .with("display_name", Value::S(self.display_name.clone()))
        .with("payload_url", Value::S(self.payload_url.clone()))
        .with("active", Value::Bool(self.active))
        .with("format", Value::S(self.format.clone()))
        .with("filters", Value::S(filters))
        .with("rev", Value::N(self.rev))
        .with("key_id", Value::S(self.key_id.clone()));
        if let Some(secret) = &self.secret {
            item.set("secret", Value::B(secret.clone()));
        }
        Ok(item)
    }

    pub(crate) fn from_item(item: &Item) -> Result<Hook> {
        let corrupt =
            |what: &str| Error::internal(format!("hook item {} {} lacks {what}", item.pk, item.sk));
        let filters = match item.s("filters") {
            Some(json) => serde_json::from_str(json).map_err(|_| corrupt("valid filters"))?,
            None => Vec::new(),
        };
        Ok(Hook {
            name: item.s("name").ok_or_else(|| corrupt("name"))?.to_string(),
            display_name: item.s("display_name").unwrap_or_default().to_string(),
            payload_url: item.s("payload_url").ok_or_else(|| corrupt("payload_url"))?.to_string(),
            active: item.bool("active").unwrap_or(true),
            format: item.s("format").unwrap_or("raw").to_string(),
            filters,
            secret: item.b("secret").map(<[u8]>::to_vec),
            key_id: item.s("key_id").ok_or_else(|| corrupt("key_id"))?.to_string(),
            rev: item.n("rev").unwrap_or(0),
        })
    }

    /// Whether this hook takes events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.active && (self.filters.is_empty() || self.filters.iter().any(|f| f == kind))
    }
}

/// The hook's secret in plain text, if it has one.
pub async fn secret_of(app: &App, hook: &Hook) -> Result<Option<Vec<u8>>> {
    let Some(sealed) = &hook.secret else { return Ok(None) };
    let mut plain = secrets::decrypt(app, &hook.key_id, std::slice::from_ref(sealed)).await?;
    Ok(plain.pop())
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "a webhook name has 1 to {MAX_NAME} characters from [A-Za-z0-9-_.]"
        )))
    }
}

fn check_format(format: &str) -> Result<()> {
    match format {
        "raw" | "slack" => Ok(()),
        other => {
            Err(Error::BadRequest(format!("webhook format must be raw or slack, not {other:?}")))
        }
    }
}

fn check_filters(filters: &[String]) -> Result<()> {
    for f in filters {
        if !EVENT_KINDS.contains(&f.as_str()) {
            return Err(Error::BadRequest(format!(
                "unknown webhook filter {f:?}; known: {}",
                EVENT_KINDS.join(", ")
            )));
        }
    }
    Ok(())
}

/// Whether an address is one a hook must not reach without the loopback allowance: loopback,
/// private, link-local, unspecified, shared (CGNAT), broadcast, documentation or unique-local.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xff00) == 0xff00 // multicast
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64.0.0/10
}

/// Checks a payload URL (see the module documentation) and returns it normalised.
pub fn validate_url(raw: &str, allow_internal: bool) -> Result<String> {
    let bad = |why: &str| Error::BadRequest(format!("invalid webhook payloadUrl: {why}"));
    if raw.len() > MAX_URL {
        return Err(bad("too long"));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    let internal = match url.host() {
        None => return Err(bad("no host")),
        Some(url::Host::Ipv4(ip)) => is_internal(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_internal(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if internal && !allow_internal {
        return Err(bad("loopback, private and link-local addresses are refused \
             (STACKHOUSE_WEBHOOK_ALLOW_LOOPBACK=1 allows them)"));
    }
    Ok(url.to_string())
}

fn check_owner_names(owner: &Owner, req: &HookRequest) -> Result<()> {
    let mismatch = |field: &str, got: &str, want: &str| {
        Error::BadRequest(format!("{field} {got:?} does not match the path ({want:?})"))
    };
    if let Some(o) = req.organization_name.as_deref().filter(|o| *o != owner.org()) {
        return Err(mismatch("organizationName", o, owner.org()));
    }
    if let Owner::Stack { project, stack, .. } = owner {
        if let Some(p) = req.project_name.as_deref().filter(|p| p != project) {
            return Err(mismatch("projectName", p, project));
        }
        if let Some(s) = req.stack_name.as_deref().filter(|s| s != stack) {
            return Err(mismatch("stackName", s, stack));
        }
    }
    Ok(())
}

async fn seal_secret(app: &App, key_id: &str, secret: &str) -> Result<Option<Vec<u8>>> {
    if secret.is_empty() {
        return Ok(None);
    }
    if secret.len() > MAX_SECRET {
        return Err(Error::BadRequest(format!("a webhook secret has at most {MAX_SECRET} bytes")));
    }
    let mut sealed = secrets::encrypt(app, key_id, &[secret.as_bytes().to_vec()]).await?;
    Ok(sealed.pop())
}

/// Creates a hook; 409 when the owner already has one of that name.
pub async fn create(app: &App, owner: &Owner, req: HookRequest) -> Result<Hook> {
    check_owner_names(owner, &req)?;
    let name = match req.name {
        Some(n) => n,
        None => new_id().chars().take(8).collect(),
    };
    check_name(&name)?;
    let payload_url = req
        .payload_url
        .as_deref()
        .ok_or_else(|| Error::BadRequest("payloadUrl is required".into()))?;
    let payload_url = validate_url(payload_url, app.settings.webhook_allow_loopback)?;
    let display_name = req.display_name.filter(|d| !d.is_empty()).unwrap_or_else(|| name.clone());
    if display_name.len() > MAX_DISPLAY_NAME {
        return Err(Error::BadRequest(format!(
            "displayName has at most {MAX_DISPLAY_NAME} characters"
        )));
    }
    let format = req.format.unwrap_or_else(|| "raw".into());
    check_format(&format)?;
    let filters = req.filters.unwrap_or_default();
    check_filters(&filters)?;
    let key_id = owner.new_key_id();
    let secret = match req.secret.as_deref() {
        Some(s) => seal_secret(app, &key_id, s).await?,
        None => None,
    };
    let hook = Hook {
        name,
        display_name,
        payload_url,
        active: req.active.unwrap_or(true),
        format,
        filters,
        secret,
        key_id,
        rev: 1,
    };
    match app.ports.meta.put(hook.to_item(owner)?, Some(Condition::NotExists)).await {
        Ok(()) => Ok(hook),
        Err(MetaError::ConditionFailed) => {
            Err(Error::Conflict(format!("webhook '{}' already exists", hook.name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every hook of the owner, by name.
pub async fn list(meta: &dyn MetadataStore, owner: &Owner) -> Result<Vec<Hook>> {
    let mut query = Query::prefix(item_keys::hooks_pk(owner.org()), owner.sk_prefix(), PAGE);
    let mut out = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        for item in &page.items {
            out.push(Hook::from_item(item)?);
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// One hook; 404 when absent.
pub async fn get(meta: &dyn MetadataStore, owner: &Owner, name: &str) -> Result<Hook> {
    check_name(name).map_err(|_| not_found(name))?;
    let item = meta
        .get(&item_keys::hooks_pk(owner.org()), &format!("{}{name}", owner.sk_prefix()))
        .await?
        .ok_or_else(|| not_found(name))?;
    Hook::from_item(&item)
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("webhook '{name}' not found"))
}

/// Applies the fields present in `req` to the hook (the name cannot change).
pub async fn update(app: &App, owner: &Owner, name: &str, req: HookRequest) -> Result<Hook> {
    check_owner_names(owner, &req)?;
    if let Some(n) = req.name.as_deref().filter(|n| *n != name) {
        return Err(Error::BadRequest(format!("a webhook cannot be renamed (to {n:?})")));
    }
    let payload_url = match req.payload_url.as_deref() {
        Some(u) => Some(validate_url(u, app.settings.webhook_allow_loopback)?),
        None => None,
    };
    if let Some(f) = &req.format {
        check_format(f)?;
    }
    if let Some(f) = &req.filters {
        check_filters(f)?;
    }
    if req.display_name.as_ref().is_some_and(|d| d.len() > MAX_DISPLAY_NAME) {
        return Err(Error::BadRequest(format!(
            "displayName has at most {MAX_DISPLAY_NAME} characters"
        )));
    }
    let meta = app.ports.meta.as_ref();
    let secret = match req.secret.as_deref() {
        Some(s) => Some(seal_secret(app, &get(meta, owner, name).await?.key_id, s).await?),
        None => None,
    };
    let updated = retry_on_conflict!(8, async {
        let mut hook = get(meta, owner, name).await?;
        let read_rev = hook.rev;
        if let Some(u) = &payload_url {
            hook.payload_url = u.clone();
        }
        if let Some(d) = req.display_name.as_ref().filter(|d| !d.is_empty()) {
            hook.display_name = d.clone();
        }
        if let Some(a) = req.active {
            hook.active = a;
        }
        if let Some(f) = &req.format {
            hook.format = f.clone();
        }
        if let Some(f) = &req.filters {
            hook.filters = f.clone();
        }
        if let Some(s) = &secret {
            hook.secret = s.clone();
        }
        hook.rev = read_rev + 1;
        let cond = Condition::Equals("rev".into(), Value::N(read_rev));
        written(meta.put(hook.to_item(owner)?, Some(cond)).await, hook)
    })?;
    updated.ok_or_else(|| {
        Error::Conflict(format!("webhook '{name}' is being changed concurrently, try again"))
    })
}

/// Deletes a hook; 404 when absent.
pub async fn delete(meta: &dyn MetadataStore, owner: &Owner, name: &str) -> Result<()> {
    check_name(name).map_err(|_| not_found(name))?;
    match meta
        .delete(
            &item_keys::hooks_pk(owner.org()),
            &format!("{}{name}", owner.sk_prefix()),
            Some(Condition::Exists),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => Err(not_found(name)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let ok = |u: &str| validate_url(u, false).is_ok();
        assert!(ok("https://hooks.example.com/x"));
        assert!(ok("https://8.8.8.8/x"));
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://api.localhost./",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.5.4/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
        ] {
            assert!(!ok(bad), "{bad} must be refused");
        }
        assert!(validate_url("http://127.0.0.1:8080/", true).is_ok());
        assert!(validate_url("ftp://127.0.0.1/", true).is_err());
    }

    #[test]
    fn filters_select_kinds() {
        let mut h = Hook {
            name: "h".into(),
            display_name: "h".into(),
            payload_url: "https://example.com".into(),
            active: true,
            format: "raw".into(),
            filters: vec![],
            secret: None,
            key_id: "k".into(),
            rev: 1,
        };
        assert!(h.wants("stack_created"));
        h.filters = vec!["update_succeeded".into()];
        assert!(h.wants("update_succeeded") && !h.wants("stack_created"));
        h.active = false;
        assert!(!h.wants("update_succeeded"));
        assert!(check_filters(&["bogus".into()]).is_err());
        assert!(check_format("slack").is_ok() && check_format("ms_teams").is_err());
    }
}
