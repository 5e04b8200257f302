//! The HTTP API: the route table (single source of truth), transport-neutral dispatch, request
//! parsing, auth and responses. Handlers take a [`Ctx`] and return a [`Reply`]; they never know
//! whether they run in Lambda or in the emulator.

pub mod auth;
pub mod body;
pub mod dispatch;
pub mod handlers;
pub mod policy;
pub mod reply;
pub mod routes;
#[cfg(feature = "openapi")]
pub mod shapes;
pub mod sockets;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};

pub use crate::ports::{Access, Needs};
pub use dispatch::Router;
pub use reply::Reply;

use crate::app::App;
use crate::error::{Error, Result};
use crate::service::identity::Caller;

/// Who may call a route: how the caller authenticates and what they must be allowed to do, as
/// one value per route so the two cannot disagree. [`Guard::auth`] and [`Guard::permission`]
/// are the two halves dispatch checks: authentication before the rate limit, authorization
/// after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Anybody.
    Public,
    /// Any valid access token: the route only touches the caller's own things.
    Token,
    /// An access token of a member of the `{org}` in the path.
    OrgMember,
    /// An access token of an admin of the `{org}` in the path.
    OrgAdmin,
    /// An access token with at least read permission on the stack in the path.
    StackRead,
    /// The same, write permission.
    StackWrite,
    /// The same, admin permission.
    StackAdmin,
    /// An access token with at least read permission on the environment in the path
    /// (`{org}/{project}/{env}`).
    EnvRead,
    /// The same, open permission (secrets in the clear).
    EnvOpen,
    /// The same, write permission.
    EnvWrite,
    /// The same, admin permission.
    EnvAdmin,
    /// The lease token of a live update of the stack in the path.
    Lease,
    /// The update's lease token even after the update ended (retried completions).
    LeaseAnyState,
    /// The token of the deployment in the path, which only its runner holds.
    Runner,
}

impl Guard {
    /// How the caller authenticates.
    pub const fn auth(self) -> Auth {
        match self {
            Guard::Public => Auth::Public,
            Guard::Lease => Auth::Lease,
            Guard::LeaseAnyState => Auth::LeaseAnyState,
            _ => Auth::User,
        }
    }

    /// What the caller must be allowed to do.
    pub const fn permission(self) -> Permission {
        use crate::service::access::StackPermission;
        use crate::service::environments::access::EnvPermission;
        match self {
            Guard::Public => Permission::Public,
            Guard::Token => Permission::Token,
            Guard::OrgMember => Permission::OrgMember,
            Guard::OrgAdmin => Permission::OrgAdmin,
            Guard::StackRead => Permission::Stack(StackPermission::Read),
            Guard::StackWrite => Permission::Stack(StackPermission::Write),
            Guard::StackAdmin => Permission::Stack(StackPermission::Admin),
            Guard::EnvRead => Permission::Environment(EnvPermission::Read),
            Guard::EnvOpen => Permission::Environment(EnvPermission::Open),
            Guard::EnvWrite => Permission::Environment(EnvPermission::Write),
            Guard::EnvAdmin => Permission::Environment(EnvPermission::Admin),
            Guard::Lease | Guard::LeaseAnyState => Permission::Lease,
            Guard::Runner => Permission::Runner,
        }
    }
}

/// How a route authenticates its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No credentials needed.
    Public,
    /// `Authorization: token <access token>` (docs/PROTOCOL-NOTES.md, Endpoints: T).
    User,
    /// `Authorization: update-token <lease token>` (docs/PROTOCOL-NOTES.md, Endpoints: U) of a
    /// live lease.
    Lease,
    /// The update's lease token even after the update ended, so that retried completions are
    /// idempotent (docs/PROTOCOL-NOTES.md, Update lifecycle, #38).
    LeaseAnyState,
}

/// What the caller must be allowed to do to call a route. Declared per route in the table and
/// enforced by one check in dispatch ([`auth::authorize`]) before the handler runs, so a
/// handler never decides who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Anybody (only with [`Auth::Public`]).
    Public,
    /// Any valid access token: the route only touches the caller's own things (profile,
    /// personal tokens, the stacks they can read).
    Token,
    /// The update's lease (with [`Auth::Lease`] / [`Auth::LeaseAnyState`]): bound to the stack
    /// and update the lease was granted for, which needed write permission.
    Lease,
    /// Membership of the `{org}` in the path.
    OrgMember,
    /// The admin role in the `{org}` in the path.
    OrgAdmin,
    /// At least this permission on the `{org}/{project}/{stack}` in the path.
    Stack(crate::service::access::StackPermission),
    /// At least this permission on the `{org}/{project}/{env}` environment in the path.
    Environment(crate::service::environments::access::EnvPermission),
    /// The token of the `{deployment}` in the path (its runner's).
    Runner,
}

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply>> + Send>>;

/// A route handler: a plain function pointer so the table can be a `static`.
pub type Handler = fn(Ctx) -> HandlerFuture;

/// One entry of the route table.
#[derive(Debug)]
pub struct Route {
    /// Function name: the Lambda binary under `functions/`, the SAM logical id's base.
    pub name: &'static str,
    /// HTTP method.
    pub method: Method,
    /// Path template with `{param}` segments (matchit syntax).
    pub path: &'static str,
    /// Who may call it.
    pub guard: Guard,
    /// What the handler uses of each port.
    pub needs: Needs,
    /// The handler.
    pub handler: Handler,
    /// The domain the route belongs to: its handler's module (`stacks` for `stacks::get`).
    /// The SAM template deploys each domain's functions as one nested stack.
    pub domain: &'static str,
}

impl Route {
    /// How the caller authenticates.
    pub const fn auth(&self) -> Auth {
        self.guard.auth()
    }

    /// What the caller must be allowed to do.
    pub const fn permission(&self) -> Permission {
        self.guard.permission()
    }
}

/// Everything a handler gets: dependencies, the authenticated caller and the parsed request.
pub struct Ctx {
    /// Ports and settings, built once per process.
    pub app: Arc<App>,
    /// Who is calling (after authentication).
    pub caller: Caller,
    /// Path parameters by template name.
    pub params: HashMap<String, String>,
    /// Query parameters (last value wins).
    pub query: HashMap<String, String>,
    /// The query string as sent, for parameters that repeat ([`Ctx::query_all`]).
    pub raw_query: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body, already gzip-decoded and size-checked.
    pub body: Bytes,
    /// The body as the client compressed it, when it sent gzip (`body` is what it decodes to):
    /// a handler that stores what it received keeps these bytes instead of compressing again.
    pub gzip_body: Option<Bytes>,
    /// The path's stack as authorization read it (stack-permission routes), so the handler
    /// does not read it again; see [`Ctx::stack`].
    pub stack: Option<crate::service::stacks::Stack>,
    /// The path's environment as authorization read it (environment-permission routes); see
    /// [`Ctx::environment`].
    pub environment: Option<crate::service::environments::Environment>,
    /// The caller's standing in the path's organization as authorization resolved it (every
    /// organization route); see [`Ctx::org_access`].
    pub access: Option<crate::service::access::OrgAccess>,
}

impl Ctx {
    /// The body to store as the client sent it: its gzip bytes, or the body compressed once.
    pub fn body_as_received(&self) -> Result<Bytes> {
        crate::service::deployments::as_received(self.gzip_body.as_ref(), &self.body)
    }

    /// The stack named by the path: the copy authorization read for this request, or (on
    /// routes that did not need one) a fresh read; 404 when it does not exist.
    pub async fn stack(&self) -> Result<crate::service::stacks::Stack> {
        match &self.stack {
            Some(stack) => Ok(stack.clone()),
            None => {
                let r = auth::stack_ref(&self.params)?;
                crate::service::stacks::get(self.app.ports.meta.as_ref(), &r).await
            }
        }
    }

    /// The environment named by the path: the copy authorization read for this request, or
    /// a fresh read; 404 when it does not exist.
    pub async fn environment(&self) -> Result<crate::service::environments::Environment> {
        match &self.environment {
            Some(env) => Ok(env.clone()),
            None => {
                let at = auth::env_ref(&self.params)?;
                crate::service::environments::get(self.app.ports.meta.as_ref(), &at).await
            }
        }
    }

    /// The caller's standing in the path's organization: as authorization resolved it, or
    /// resolved now.
    pub async fn org_access(&self) -> Result<crate::service::access::OrgAccess> {
        match &self.access {
            Some(access) => Ok(access.clone()),
            None => {
                let meta = self.app.ports.meta.as_ref();
                crate::service::access::OrgAccess::resolve(
                    meta,
                    self.caller.principal()?,
                    self.param("org")?,
                )
                .await
            }
        }
    }

    /// A path parameter (the route table guarantees its presence).
    pub fn param(&self, name: &str) -> Result<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| Error::internal(format!("route has no path parameter {name}")))
    }

    /// The `{update}` path parameter, checked (a malformed id names no update: 404).
    pub fn update_id(&self) -> Result<crate::names::UpdateId> {
        crate::names::UpdateId::parse(self.param("update")?)
    }

    /// A query parameter, if present and non-empty.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A whole-number query parameter within `range`, or `default` when absent; a 400 saying
    /// the range otherwise.
    pub fn query_number<T>(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<T>,
        default: T,
    ) -> Result<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        match self.query(name) {
            None => Ok(default),
            Some(v) => v.parse::<T>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                Error::BadRequest(format!(
                    "{name} must be a whole number from {} to {}, not {v:?}",
                    range.start(),
                    range.end()
                ))
            }),
        }
    }

    /// Every non-empty value of a repeatable query parameter (`facet=a&facet=b`), in order.
    pub fn query_all(&self, name: &str) -> Vec<String> {
        url::form_urlencoded::parse(self.raw_query.as_bytes())
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// A boolean query parameter (`true`/`false`; absent = false).
    pub fn query_bool(&self, name: &str) -> Result<bool> {
        match self.query(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(Error::BadRequest(format!(
                "query parameter {name} must be true or false, not {other:?}"
            ))),
        }
    }

    /// Parses the body as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        body::parse_json(&self.body)
    }
}

/// Wraps an `async fn(Ctx) -> Result<Reply>` into a [`Handler`]: `handler!(stacks::get)`.
#[macro_export]
macro_rules! handler {
    ($f:path) => {{
        fn h(ctx: $crate::api::Ctx) -> $crate::api::HandlerFuture {
            Box::pin($f(ctx))
        }
        h as $crate::api::Handler
    }};
}
