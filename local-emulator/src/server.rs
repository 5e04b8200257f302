//! The HTTP server: hyper over TCP, every request through the shared [`Router`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use stackhouse::adapters::embedded::{PresignVerifier, PRESIGN_PATH_PREFIX};
use stackhouse::api::{routes, Router};
use stackhouse::App;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running server.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Tells the console's pages where the event stream's WebSocket is (served on its own
    /// port, started after this server); until then they poll. Only the first call counts.
    pub fn set_events_url(&self, url: &str) -> Result<(), String> {
        let events = stackhouse::console::EventsUrl::parse(url)?;
        let _ = self.shared.events.set(events);
        Ok(())
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

struct Shared {
    app: Arc<App>,
    router: Router,
    blobs: Option<Arc<PresignVerifier>>,
    events: std::sync::OnceLock<stackhouse::console::EventsUrl>,
}

/// Serves the whole route table on an already-bound listener.
pub fn serve(
    listener: TcpListener,
    app: Arc<App>,
    blobs: Option<Arc<PresignVerifier>>,
) -> Result<Server, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let router =
        Router::new(routes::ROUTES)?.with_max_response_bytes(app.settings.max_response_bytes);
    let header_timeout = Duration::from_secs(app.settings.header_read_timeout_seconds);
    let shared = Arc::new(Shared { app, router, blobs, events: std::sync::OnceLock::new() });
    let serving = shared.clone();
    let (tx, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = rx.changed() => break,
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req, peer).await) }
                });
                // A client that never finishes its headers (slowloris) is dropped.
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
    });
    Ok(Server { addr, shared: serving, shutdown: tx, task })
}

async fn handle(
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let (mut parts, body) = req.into_parts();
    // The TCP peer, for the audit log: never a client-sent header such as X-Forwarded-For.
    parts.extensions.insert(stackhouse::service::audit::SourceIp(peer.ip().to_string()));
    if parts.uri.path().starts_with(PRESIGN_PATH_PREFIX) {
        if parts.method == http::Method::PUT {
            return receive_blob(shared, &parts, body).await;
        }
        return serve_blob(shared, parts.uri.path(), parts.uri.query()).await;
    }
    if parts.uri.path() == METRICS_PATH && parts.method == http::Method::GET {
        return serve_metrics(shared, &parts.headers).await;
    }
    let page = matches!(parts.method, http::Method::GET | http::Method::HEAD);
    if page && stackhouse::console::serves(parts.uri.path()) {
        return serve_console(shared, parts.uri.path(), parts.method == http::Method::HEAD);
    }
    let bytes = match read_body(shared, &parts, body, shared.app.settings.max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let response = shared.router.dispatch(&shared.app, Request::from_parts(parts, bytes)).await;
    response.map(Full::new)
}

/// The web console (`stackhouse::console`): its files, and its page for every other path.
fn serve_console(shared: &Shared, path: &str, head: bool) -> Response<Full<Bytes>> {
    let served = stackhouse::console::serve(path, shared.events.get());
    let body = match served.body {
        _ if head => Bytes::new(),
        std::borrow::Cow::Borrowed(file) => Bytes::from_static(file),
        std::borrow::Cow::Owned(page) => Bytes::from(page),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = StatusCode::from_u16(served.status).unwrap_or(StatusCode::NOT_FOUND);
    let headers = r.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(served.content_type));
    for (name, value) in served.headers {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    r
}

/// Reads a request body of at most `limit` bytes within the configured time; a longer or
/// slower one is answered (413, 408, 400) in the Pulumi error shape.
async fn read_body(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, Response<Full<Bytes>>> {
    // An announced length over the limit is refused before a byte of the body is read.
    let announced = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(error_response(&stackhouse::Error::PayloadTooLarge(format!(
            "request body exceeds the limit of {limit} bytes"
        ))));
    }
    let within = Duration::from_secs(shared.app.settings.body_read_timeout_seconds);
    let read = tokio::time::timeout(within, Limited::new(body, limit).collect());
    let Ok(collected) = read.await else { return Err(body_timeout_response(within)) };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            let err = if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                stackhouse::Error::PayloadTooLarge(format!(
                    "request body exceeds the limit of {limit} bytes"
                ))
            } else {
                stackhouse::Error::BadRequest(format!("could not read the request body: {e}"))
            };
            Err(error_response(&err))
        }
    }
}

/// Stores the body of a presigned PUT (the embedded stand-in for an S3 upload URL): checked
/// before a byte is read, at most the artifact size limit, answered 200 with no body as S3
/// does. What arrived is only trusted once the service has checked it.
async fn receive_blob(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Incoming,
) -> Response<Full<Bytes>> {
    let forbidden =
        || error_response(&stackhouse::Error::Forbidden("invalid or expired signature".into()));
    let Some(verifier) = &shared.blobs else { return forbidden() };
    let now = shared.app.clock.now();
    let Some(put) = verifier.check_url(parts.uri.path(), parts.uri.query(), now) else {
        return forbidden();
    };
    if !put.put {
        return forbidden();
    }
    let limit = usize::try_from(shared.app.settings.max_artifact_bytes).unwrap_or(usize::MAX);
    let bytes = match read_body(shared, parts, body, limit).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    match shared.app.ports.blobs.put(&put.key, bytes).await {
        Ok(()) => Response::new(Full::new(Bytes::new())),
        Err(e) => {
            let mut r = error_response(&stackhouse::Error::from(e));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r
        }
    }
}

/// 408 in the Pulumi error shape, closing the connection (its body is unread).
fn body_timeout_response(within: Duration) -> Response<Full<Bytes>> {
    let mut r = error_response(&stackhouse::Error::RequestTimeout(format!(
        "the request body did not arrive within {} s",
        within.as_secs()
    )));
    r.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    r
}

fn error_response(err: &stackhouse::Error) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(err.body().to_string())));
    *r.status_mut() = err.status();
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// Where the emulator serves its request metrics (Prometheus text). Lambda functions print
/// theirs as CloudWatch Embedded Metric Format lines instead.
pub const METRICS_PATH: &str = "/metrics";

/// The process's request metrics in the Prometheus text format, for an operator's token (as
/// the deep health check: scrapers send `Authorization: token …`). Outside the route table
/// because it describes this one process, which only the emulator is.
async fn serve_metrics(shared: &Shared, headers: &http::HeaderMap) -> Response<Full<Bytes>> {
    if let Err(e) = stackhouse::api::auth::require_operator(&shared.app, headers).await {
        return error_response(&e);
    }
    // Queue depths are read at scrape time (a DLQ that is not empty is what to alert on).
    let mut rows = Vec::new();
    for (name, depth) in stackhouse::service::health::queue_depths(&shared.app).await {
        match depth {
            Ok(d) => rows.push((name, [d.visible, d.in_flight, d.delayed])),
            Err(e) => tracing::warn!(queue = %name, error = %e, "queue depth unavailable"),
        }
    }
    let text =
        shared.app.metrics.prometheus() + &stackhouse::telemetry::metrics::queue_gauges(&rows);
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Serves a presigned GET of an embedded blob (the embedded stand-in for S3 presigned URLs),
/// outside the route table because it exists only in the emulator. Like S3, the response
/// carries the `Content-Encoding`/`Content-Type` the URL was signed with (e.g. `gzip` for a
/// stored deployment an export redirected to), else `application/octet-stream`.
async fn serve_blob(shared: &Shared, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let forbidden =
        || error_response(&stackhouse::Error::Forbidden("invalid or expired signature".into()));
    let Some(verifier) = &shared.blobs else { return forbidden() };
    let Some(get) = verifier.check_url(path, query, shared.app.clock.now()) else {
        return forbidden();
    };
    if get.put {
        // An upload URL never reads.
        return forbidden();
    }
    let content_type = get.content_type.as_deref().unwrap_or("application/octet-stream");
    let (Ok(content_type), Ok(content_encoding)) = (
        http::HeaderValue::from_str(content_type),
        get.content_encoding.as_deref().map(http::HeaderValue::from_str).transpose(),
    ) else {
        let msg = "the signed response headers are not valid header values";
        return error_response(&stackhouse::Error::BadRequest(msg.into()));
    };
    match shared.app.ports.blobs.get(&get.key).await {
        Ok(Some(bytes)) => {
            let mut r = Response::new(Full::new(bytes));
            r.headers_mut().insert(http::header::CONTENT_TYPE, content_type);
            if let Some(encoding) = content_encoding {
                r.headers_mut().insert(http::header::CONTENT_ENCODING, encoding);
            }
            r
        }
        Ok(None) => error_response(&stackhouse::Error::NotFound("no such blob".into())),
        Err(e) => {
            let mut r = error_response(&stackhouse::Error::from(e));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r
        }
    }
}
