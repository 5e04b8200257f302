//! Transport-neutral dispatch: finds the route for a request, authenticates, decodes the body
//! and runs the handler. The emulator builds a [`Router`] over the whole table; each Lambda
//! function builds one over its single route, so both run exactly this code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response};

use super::{auth, body, policy, reply, Ctx, Reply, Route};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::blob::ResponseHeaders;
use crate::service::call_records::{self, Offered, Records};
use crate::service::identity::{Caller, Principal};
use crate::service::{audit, feed, ratelimit};

/// How long a presigned URL handed out instead of an oversized body stays valid: enough for
/// the client to follow the redirect at once, too short to be worth leaking.
pub const PRESIGNED_REDIRECT_TTL: Duration = Duration::from_secs(300);

/// Routes requests to entries of the route table.
pub struct Router {
    paths: matchit::Router<usize>,
    // Routes sharing one path template, by method.
    entries: Vec<Vec<&'static Route>>,
    /// Largest response body the transport can deliver (Lambda: see
    /// `stackhouse_lambda::MAX_RESPONSE_BYTES`); None when unlimited (the emulator). A reply over it whose
    /// body is a stored blob becomes a `307` to a presigned URL of the blob.
    pub max_response_bytes: Option<usize>,
}

/// The stored blob behind a reply, and how to serve it from a presigned URL.
struct BlobSource {
    key: String,
    content_type: &'static str,
    gzipped: bool,
}

impl Router {
    /// Builds a router over the given routes. Fails if two templates conflict (a table bug,
    /// caught by the route-table tests).
    pub fn new(routes: &[&'static Route]) -> std::result::Result<Router, String> {
        let mut paths = matchit::Router::new();
        let mut entries: Vec<Vec<&'static Route>> = Vec::new();
        let mut by_path: HashMap<&str, usize> = HashMap::new();
        for route in routes {
            match by_path.get(route.path) {
                Some(&i) => {
                    if entries[i].iter().any(|r| r.method == route.method) {
                        return Err(format!("duplicate route {} {}", route.method, route.path));
                    }
                    entries[i].push(route);
                }
                None => {
                    let i = entries.len();
                    paths
                        .insert(route.path, i)
                        .map_err(|e| format!("route {} {}: {e}", route.method, route.path))?;
                    by_path.insert(route.path, i);
                    entries.push(vec![route]);
                }
            }
        }
        Ok(Router { paths, entries, max_response_bytes: None })
    }

    /// The same router with a response-size limit (see [`Router::max_response_bytes`]).
    pub fn with_max_response_bytes(mut self, limit: Option<usize>) -> Router {
        self.max_response_bytes = limit;
        self
    }

    /// Finds the route and path parameters for a method and path.
    pub fn find(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<(&'static Route, HashMap<String, String>)> {
        let matched = self
            .paths
            .at(path)
            .map_err(|_| Error::NotFound(format!("no route for {method} {path}")))?;
        let candidates = &self.entries[*matched.value];
        let route = candidates.iter().find(|r| r.method == method).ok_or_else(|| {
            let allowed: Vec<&str> = candidates.iter().map(|r| r.method.as_str()).collect();
            Error::MethodNotAllowed(format!(
                "{method} is not allowed on {path}; use {}",
                allowed.join(", ")
            ))
        })?;
        // Matched on the raw path, so an encoded `/` (%2F) stays within its segment; each
        // value is decoded once here, the only place that sees it encoded.
        let params = matched
            .params
            .iter()
            .map(|(k, v)| {
                let value =
                    percent_encoding::percent_decode_str(v).decode_utf8().map_err(|_| {
                        Error::BadRequest(format!("path parameter {k} is not UTF-8 once decoded"))
                    })?;
                Ok((k.to_string(), value.into_owned()))
            })
            .collect::<Result<_>>()?;
        Ok((route, params))
    }

    /// Handles one request end to end and always produces a response.
    pub async fn dispatch(&self, app: &Arc<App>, request: Request<Bytes>) -> Response<Bytes> {
        let started = Instant::now();
        let request_id = new_request_id();
        let (parts, raw_body) = request.into_parts();
        let accepts_gzip = parts
            .headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
        let head = parts.method == Method::HEAD;
        let path = parts.uri.path().to_string();
        let source_ip =
            parts.extensions.get::<audit::SourceIp>().map(|s| s.0.clone()).unwrap_or_default();
        let mut route_name = "-";
        // The organization the call concerns (its path's, or a lease's update's), for the log.
        let mut log_org: Option<String> = None;
        // Set once the caller is known: what the audit log needs after the handler ran.
        let mut audited: Option<(&'static Route, Principal, Option<String>)> = None;
        let mut denied = false;
        // The stack authorization read, for the call's event (`service::feed`).
        let mut authorized: Option<feed::EventStack> = None;
        // The call's records as they read if it succeeds, for the service to write with its
        // change (`service::call_records`).
        let mut offered: Option<Arc<Offered>> = None;
        let outcome = async {
            let (route, params) = self.find(&parts.method, &path)?;
            route_name = route.name;
            // In Lambda, bodies over ~6 MB (base64 included) never get here: Lambda refuses the
            // invocation first and API Gateway answers with its own error (see the Lambda
            // transport, `stackhouse_lambda`).
            if raw_body.len() > app.settings.max_request_bytes {
                return Err(Error::PayloadTooLarge(format!(
                    "request body exceeds the limit of {} bytes",
                    app.settings.max_request_bytes
                )));
            }
            let caller = auth::authenticate(app, route.auth(), &parts.headers, &params).await?;
            // The token's (or the update's) budget before authorization, so a flood of refused
            // calls is limited too; the organization's after it, so only its members spend it.
            ratelimit::check_caller(app, route.name, &caller).await?;
            let path_org = params.get("org").cloned();
            log_org = match &caller {
                Caller::Lease(update) => Some(update.org.clone()),
                _ => path_org.clone(),
            };
            if let Caller::Token(p) = &caller {
                audited = Some((route, p.clone(), path_org.clone()));
            }
            let read = match auth::authorize(app, route, &caller, &params).await {
                Ok(read) => read,
                Err(e) => {
                    denied = true;
                    return Err(e);
                }
            };
            authorized = read.stack.as_ref().map(feed::EventStack::of);
            let charged = policy::charged_org(route, path_org.as_deref());
            ratelimit::check_org(app, &caller, charged).await?;
            let decoded = body::decode(&parts.headers, raw_body, app.settings.max_decoded_bytes)?;
            let query = parse_query(parts.uri.query());
            let ctx = Ctx {
                app: app.clone(),
                caller,
                params,
                query,
                raw_query: parts.uri.query().unwrap_or_default().to_string(),
                headers: parts.headers.clone(),
                body: decoded.body,
                gzip_body: decoded.gzip,
                stack: read.stack,
                environment: read.environment,
                access: read.access,
            };
            if let Some((route, principal, Some(org))) = &audited {
                let call =
                    audit_call(route, principal, &path, Some(org), ASSUMED, false, &source_ip);
                let records = Records::new(
                    org,
                    policy::should_audit(route, ASSUMED, false)
                        .then(|| audit::call_entry(app, &call)),
                    change_event(route, principal, &path, ASSUMED, authorized.clone()),
                );
                // Nothing to offer for a read.
                offered = (!records.is_empty()).then(|| Offered::new(records));
            }
            let info = audit::RequestInfo { source_ip: source_ip.clone(), route: route.name };
            let handled = audit::in_request(info, (route.handler)(ctx));
            call_records::offer(offered.clone(), handled).await
        }
        .await;
        let status = match &outcome {
            Ok(reply) => reply.status.as_u16(),
            Err(e) => e.status().as_u16(),
        };
        // Stored with the change already, unless the reply names another stack.
        let about = outcome.as_ref().ok().and_then(|r| r.about.clone());
        let written = about.is_none() && offered.as_ref().is_some_and(|o| o.written_for(status));
        if let Some((route, principal, org)) = audited.as_ref().filter(|_| !written) {
            // Written after the handler, so the entry holds the real result, and awaited before
            // answering, so a 2xx is only sent once the entry is stored or its failure logged
            // (it never turns the answer into an error: the change has happened). A crash
            // between the handler and this write loses the entry, never the change; writing an
            // intent entry first would close that gap at the price of a second write per call.
            // The audit entry and the event are independent writes: made together, so that
            // the embedded store's group commit makes them durable with one sync, not two.
            // Where the handler's service could, it wrote both with the change instead, in one
            // transaction (`service::call_records`), and this is skipped.
            let audit = async {
                if policy::should_audit(route, status, denied) {
                    let call = audit_call(
                        route,
                        principal,
                        &path,
                        org.as_deref(),
                        status,
                        denied,
                        &source_ip,
                    );
                    audit::record_call(app, call).await;
                }
            };
            // A change becomes an event of its organization (before the answer, as the audit
            // entry; a call without an organization in its path, e.g. a personal token's, is
            // nobody's organization's event).
            let event = async {
                let stack = about.or_else(|| authorized.clone());
                if let (Some(org), Some(event)) =
                    (org, change_event(route, principal, &path, status, stack))
                {
                    feed::record(app, org, event).await;
                }
            };
            tokio::join!(audit, event);
        }
        let response = self.respond(app, outcome, accepts_gzip, &request_id, head).await;
        app.metrics.observe(route_name, response.status().as_u16(), started.elapsed());
        tracing::info!(
            request_id,
            route = route_name,
            org = log_org.as_deref().unwrap_or("-"),
            method = %parts.method,
            path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }
}

impl Router {
    /// Turns the handler outcome into the response, within the transport's size limit: a
    /// blob-backed reply too large to send is answered with a redirect to a presigned URL of
    /// the blob; any other oversized reply is sent anyway (and logged as our bug: the transport
    /// will fail it), since a 500 would not help the user either.
    async fn respond(
        &self,
        app: &App,
        outcome: Result<Reply>,
        accepts_gzip: bool,
        request_id: &str,
        head: bool,
    ) -> Response<Bytes> {
        let Some(limit) = self.max_response_bytes.filter(|_| !head) else {
            return reply::into_response(outcome, accepts_gzip, request_id, head);
        };
        let source = outcome.as_ref().ok().and_then(|r| {
            r.blob_key.as_ref().map(|key| BlobSource {
                key: key.clone(),
                content_type: r.content_type,
                gzipped: r.gzipped,
            })
        });
        // A stored body over the limit as it is: redirect without decoding it at all.
        let stored_len = outcome.as_ref().map(|r| r.body.len()).unwrap_or(0);
        if let Some(source) = source.as_ref().filter(|_| stored_len > limit) {
            return self.redirect(app, source, stored_len, limit, accepts_gzip, request_id).await;
        }
        let response = reply::into_response(outcome, accepts_gzip, request_id, head);
        let len = response.body().len();
        if len <= limit {
            return response;
        }
        match source {
            // Decompressed for a client that does not take gzip, it outgrew the limit.
            Some(source) if response.status().is_success() => {
                self.redirect(app, &source, len, limit, accepts_gzip, request_id).await
            }
            _ => {
                tracing::error!(
                    request_id,
                    bytes = len,
                    limit,
                    "response exceeds the transport's limit and has no stored blob to redirect to"
                );
                response
            }
        }
    }

    /// `307` to a presigned URL of the blob, answering with the reply's `Content-Type` and,
    /// for a gzip blob, `Content-Encoding: gzip` — even to a client that did not ask for gzip
    /// (S3 cannot decompress; every Pulumi CLI asks).
    async fn redirect(
        &self,
        app: &App,
        source: &BlobSource,
        len: usize,
        limit: usize,
        accepts_gzip: bool,
        request_id: &str,
    ) -> Response<Bytes> {
        tracing::info!(
            request_id,
            bytes = len,
            limit,
            key = source.key,
            "response too large for the transport: redirecting to a presigned URL"
        );
        let headers = ResponseHeaders {
            content_encoding: source.gzipped.then_some("gzip"),
            content_type: Some(source.content_type),
        };
        let outcome =
            match app.ports.blobs.presign_get(&source.key, PRESIGNED_REDIRECT_TTL, headers).await {
                Ok(url) => Reply::temporary_redirect(&url),
                Err(e) => Err(e.into()),
            };
        reply::into_response(outcome, accepts_gzip, request_id, false)
    }
}

/// The status a token call's records are prebuilt with (`service::call_records`).
const ASSUMED: u16 = call_records::ASSUMED_STATUS;

/// The audit log's view of a call.
fn audit_call<'a>(
    route: &'static Route,
    principal: &'a Principal,
    path: &'a str,
    path_org: Option<&'a str>,
    status: u16,
    denied: bool,
    source_ip: &'a str,
) -> audit::Call<'a> {
    audit::Call {
        action: route.name,
        method: route.method.as_str(),
        principal,
        path,
        path_org,
        status,
        denied,
        source_ip,
    }
}

/// The organization's event of a call that answered `status`, when it is a change.
fn change_event(
    route: &Route,
    principal: &Principal,
    path: &str,
    status: u16,
    stack: Option<feed::EventStack>,
) -> Option<feed::NewEvent> {
    policy::is_change(route, status).then(|| feed::NewEvent {
        actor: principal.login().to_string(),
        kind: route.name.to_string(),
        path: path.to_string(),
        stack,
        payload: serde_json::json!({"method": route.method.as_str(), "status": status}),
    })
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}
