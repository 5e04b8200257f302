//! The event stream's WebSocket routes — `$connect`, `$disconnect` and `$default` — as a table
//! beside the route table, with transport-neutral handlers: API Gateway's WebSocket API calls
//! them through the functions `ws-connect`, `ws-disconnect` and `ws-default`, the emulator's
//! WebSocket server on its handshake, close and each message.
//!
//! Connecting: `wss://…?org=<org>[&after=<seq>][&stack=<project>/<stack>[&update=<id>]]` with
//! `Authorization: token <access token>` — or, from a browser, whose WebSocket cannot send
//! headers, the subprotocols [`BROWSER_PROTOCOL`] and `stackhouse.token.<access token>` (the
//! server selects the first, never echoing the token). Without `after` the client gets only what happens
//! from now on; with it, everything after that number first. The server then sends text frames
//! of JSON: `{"type": "event", "seq", …}` for each event of the stream the caller may read, in
//! order; `{"type": "engine-events", "ephemeral": true, …}` with an update scope, as the
//! update's CLI sends them. A client sends `{"action": "ping"}` to hear `{"type": "pong"}`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderMap;

use crate::api::handlers::feed::readable_stack;
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::{OrgName, UpdateId};
use crate::ports::Needs;
use crate::service::access::OrgAccess;
use crate::service::feed::{self, sockets, wire};
use crate::service::{identity, updates};

/// What a socket route is given.
#[derive(Debug, Clone, Default)]
pub struct SocketRequest {
    /// The connection's id (API Gateway's `connectionId`, or the emulator's).
    pub connection: String,
    /// The handshake's headers (`$connect` only).
    pub headers: HeaderMap,
    /// The handshake's query string, undecoded (`$connect` only).
    pub query: String,
    /// A message's text (`$default` only).
    pub body: String,
}

/// A boxed handler future.
pub type SocketFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A socket route's handler.
pub type SocketFn = fn(Arc<App>, SocketRequest) -> SocketFuture;

/// One row of the socket table.
#[derive(Debug)]
pub struct SocketRoute {
    /// Function name (`functions/src/bin/<name>.rs`, the template's logical id).
    pub name: &'static str,
    /// API Gateway's route key.
    pub route_key: &'static str,
    /// One line for the docs and the Lambda console.
    pub description: &'static str,
    /// What the handler uses of each port.
    pub needs: Needs,
    /// The handler; an error refuses a `$connect` with its status and Pulumi's error body.
    pub handler: SocketFn,
}

/// `$connect`: authenticates the access token and records the connection.
pub static WS_CONNECT: SocketRoute = SocketRoute {
    name: "ws-connect",
    route_key: "$connect",
    description: "Opens an event-stream WebSocket: checks the token and scope, records it",
    needs: Needs::META_WRITE,
    handler: |app, req| Box::pin(async move { connect(&app, &req).await }),
};

/// `$disconnect`: forgets the connection.
pub static WS_DISCONNECT: SocketRoute = SocketRoute {
    name: "ws-disconnect",
    route_key: "$disconnect",
    description: "Forgets a closed event-stream WebSocket",
    needs: Needs::META_WRITE,
    handler: |app, req| Box::pin(async move { sockets::close(&app, &req.connection).await }),
};

/// `$default`: a client's message (`{"action": "ping"}`).
pub static WS_DEFAULT: SocketRoute = SocketRoute {
    name: "ws-default",
    route_key: "$default",
    description: "Answers an event-stream client's message (ping)",
    needs: Needs::META_READ.pushing(),
    handler: |app, req| Box::pin(async move { message(&app, &req).await }),
};

/// Every socket route.
pub static SOCKETS: &[&SocketRoute] = &[&WS_CONNECT, &WS_DISCONNECT, &WS_DEFAULT];

/// The subprotocol a browser offers, beside `stackhouse.token.<access token>`, and the one the
/// server selects: a browser's WebSocket can send no `Authorization` header, only protocols.
/// The token still never goes into a URL (which proxies and logs keep).
pub const BROWSER_PROTOCOL: &str = "stackhouse.events";

/// The prefix of the subprotocol that carries a browser's access token.
const TOKEN_PROTOCOL: &str = "stackhouse.token.";

/// The subprotocols a handshake offers (`Sec-WebSocket-Protocol`, comma-separated, maybe in
/// several headers).
fn offered(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The subprotocol to select in the handshake's answer: [`BROWSER_PROTOCOL`] when the client
/// offered it (a browser refuses a connection whose answer selects none of those it offered).
pub fn selected_protocol(headers: &HeaderMap) -> Option<&'static str> {
    offered(headers).any(|p| p == BROWSER_PROTOCOL).then_some(BROWSER_PROTOCOL)
}

/// The handshake's access token: `Authorization: token …`, else a browser's token subprotocol.
fn access_token(headers: &HeaderMap) -> Result<&str> {
    if headers.contains_key(http::header::AUTHORIZATION) {
        return crate::api::auth::credential(headers, "token");
    }
    match offered(headers).find_map(|p| p.strip_prefix(TOKEN_PROTOCOL)) {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(Error::Unauthorized(format!(
            "no access token: send `Authorization: token <token>` or offer the subprotocol \
             {TOKEN_PROTOCOL}<token>"
        ))),
    }
}

/// A query parameter, decoded; empty counts as absent.
fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

async fn connect(app: &App, req: &SocketRequest) -> Result<()> {
    let token = access_token(&req.headers)?;
    let meta = app.ports.meta.as_ref();
    let caller = identity::authenticate_token(meta, token, app.clock.now()).await?;
    let principal = caller.principal()?;
    // A deployment's token reaches its stack, never its organization's event stream.
    if principal.deployment.is_some() {
        return Err(Error::Forbidden("a deployment's token cannot open the event stream".into()));
    }
    let org = param(&req.query, "org")
        .ok_or_else(|| Error::BadRequest("the query must name the organization: ?org=…".into()))?;
    let org = OrgName::parse(&org)?;
    let mut access = OrgAccess::resolve(meta, principal, org.as_str()).await?;
    access.require_member()?;
    let after = match param(&req.query, "after") {
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            Error::BadRequest(format!("after must be a whole number from 0, not {v:?}"))
        })?,
        // Live only: from the stream's current end.
        None => feed::counter(meta, org.as_str()).await?,
    };
    let mut scope = sockets::Scope { after, ..Default::default() };
    if let Some(v) = param(&req.query, "stack") {
        let (r, found) = readable_stack(meta, &mut access, &org, &v).await?;
        if let Some(id) = param(&req.query, "update") {
            let missing = || Error::NotFound(format!("update '{id}' of stack '{r}' not found"));
            let update_id = UpdateId::parse(&id).map_err(|_| missing())?;
            updates::get(meta, &found.id, &update_id).await.map_err(|_| missing())?;
            scope.update_id = Some(update_id);
        }
        scope.stack_id = Some(found.id);
        scope.stack_name = Some(format!("{}/{}", r.project, r.stack));
    } else if param(&req.query, "update").is_some() {
        return Err(Error::BadRequest(
            "an update scope needs its stack: &stack=<project>/<stack>".into(),
        ));
    }
    let hash = identity::hash_token(token);
    sockets::open(app, principal, &hash, org.as_str(), &scope, &req.connection).await
}

async fn message(app: &App, req: &SocketRequest) -> Result<()> {
    let action = serde_json::from_str::<serde_json::Value>(&req.body)
        .ok()
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_string));
    let frame = match action.as_deref() {
        Some("ping") => wire::pong_frame(),
        _ => wire::error_frame("unknown message: send {\"action\": \"ping\"}"),
    };
    match app.ports.push.send(&req.connection, &frame).await {
        Ok(()) | Err(crate::ports::PushError::Gone(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, v.parse().expect("a header value"));
        }
        h
    }

    #[test]
    fn a_browser_sends_its_token_as_a_subprotocol_and_hears_only_the_plain_one() {
        let browser =
            with("sec-websocket-protocol", &["stackhouse.events, stackhouse.token.pul-abc"]);
        assert_eq!(access_token(&browser).ok(), Some("pul-abc"));
        assert_eq!(selected_protocol(&browser), Some(BROWSER_PROTOCOL));
        // In two headers, as some clients send them.
        let split =
            with("sec-websocket-protocol", &["stackhouse.token.pul-xyz", "stackhouse.events"]);
        assert_eq!(access_token(&split).ok(), Some("pul-xyz"));
        assert_eq!(selected_protocol(&split), Some(BROWSER_PROTOCOL));
        // The header wins; a client offering nothing gets no protocol selected.
        let mut both = with("authorization", &["token pul-header"]);
        both.append("sec-websocket-protocol", "stackhouse.token.pul-abc".parse().expect("value"));
        assert_eq!(access_token(&both).ok(), Some("pul-header"));
        assert_eq!(selected_protocol(&both), None);
        for refused in [
            HeaderMap::new(),
            with("sec-websocket-protocol", &["stackhouse.events"]),
            with("sec-websocket-protocol", &["stackhouse.events, stackhouse.token."]),
        ] {
            let e = access_token(&refused).expect_err("no token");
            assert_eq!(e.status(), http::StatusCode::UNAUTHORIZED);
        }
    }
}
