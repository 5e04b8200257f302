//! Starts the emulator in-process on a free 127.0.0.1 port, on either backend, and gives tests
//! an HTTP client that speaks to it exactly as the Pulumi CLI does.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use local_emulator::{bootstrap, server, Backend, Config};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use stackhouse::app::Settings;
use stackhouse::App;

/// A running emulator plus a logged-in client.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bootstrap user's access token.
    pub token: String,
    /// The bootstrap user (and organization) name.
    pub user: String,
    /// Direct access to the ports, to arrange states the API cannot yet produce.
    pub app: Arc<App>,
    /// The sockets the event stream's WebSocket pushes to (the app's push port).
    pub hub: Arc<stackhouse::adapters::embedded::Hub>,
    server: Option<server::Server>,
    data_dir: Option<PathBuf>,
    aws: Option<stackhouse::adapters::aws::AwsConfig>,
    _moto: Option<crate::moto::MotoServer>,
}

/// Which backend a conformance run uses.
pub enum Target {
    /// Embedded store in a fresh temp dir.
    Embedded,
    /// AWS adapters against a moto endpoint, with fresh resources named after the tag. The
    /// server is dropped (and its process killed) with the test, when the test started it.
    Aws {
        /// moto's base URL.
        endpoint: String,
        /// Names this test's resources.
        tag: &'static str,
        /// Keeps a moto process started for this test alive.
        guard: Option<crate::moto::MotoServer>,
    },
    /// AWS adapters against one endpoint per service (e.g. SeaweedFS for S3, LocalStack for
    /// SQS and KMS, moto for DynamoDB), with fresh resources named after the tag.
    AwsServices {
        /// Every service's endpoint.
        endpoints: stackhouse::adapters::aws::ServiceEndpoints,
        /// Names this test's resources.
        tag: &'static str,
    },
}

/// The per-service endpoint variables [`mixed_target`] reads, in the order DynamoDB, S3, SQS,
/// KMS.
pub const MIXED_VARS: [&str; 4] = [
    "STACKHOUSE_MIXED_DYNAMODB",
    "STACKHOUSE_MIXED_S3",
    "STACKHOUSE_MIXED_SQS",
    "STACKHOUSE_MIXED_KMS",
];

/// An AWS target with one endpoint per service, from `STACKHOUSE_MIXED_DYNAMODB`, `_S3`,
/// `_SQS` and `_KMS` (set by `.ci/mixed-lane`, which starts the servers). Panics when one is
/// unset: the mixed suites are only built with the `mixed-lane` feature, which the lane turns
/// on, so an unset variable there is a broken lane, never a reason to skip.
pub fn mixed_target(tag: &'static str) -> Target {
    let get = |name: &str| match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is unset: the mixed-lane suites need {} (run `bash .ci/mixed-lane`)",
            MIXED_VARS.join(", ")
        ),
    };
    let endpoints = stackhouse::adapters::aws::ServiceEndpoints {
        dynamodb: Some(get(MIXED_VARS[0])),
        s3: Some(get(MIXED_VARS[1])),
        sqs: Some(get(MIXED_VARS[2])),
        kms: Some(get(MIXED_VARS[3])),
    };
    Target::AwsServices { endpoints, tag }
}

/// An AWS target on moto: the one at `$STACKHOUSE_MOTO_ENDPOINT` (started once by `.ci/run`),
/// else a moto server started for this test.
pub fn moto_target(tag: &'static str) -> Target {
    match std::env::var("STACKHOUSE_MOTO_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Target::Aws { endpoint, tag, guard: None },
        _ => {
            let server = crate::moto::MotoServer::start();
            Target::Aws { endpoint: server.endpoint.clone(), tag, guard: Some(server) }
        }
    }
}

fn unique_dir(tag: &str) -> PathBuf {
    let n: u64 = rand_u64();
    std::env::temp_dir().join(format!("stackhouse-test-{tag}-{n:016x}"))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl TestServer {
    /// Starts an emulator with default settings.
    pub async fn start(target: Target) -> TestServer {
        TestServer::start_with(target, Settings::default()).await
    }

    /// Starts an emulator with the given limits.
    pub async fn start_with(target: Target, settings: Settings) -> TestServer {
        TestServer::start_wrapped(target, settings, |ports| ports).await
    }

    /// Starts an emulator on ports that count every storage operation, and those counters.
    pub async fn start_counted(
        target: Target,
        settings: Settings,
    ) -> (TestServer, Arc<stackhouse::adapters::counting::Counters>) {
        let slot: Arc<std::sync::Mutex<Option<Arc<_>>>> = Arc::default();
        let keep = slot.clone();
        let server = TestServer::start_wrapped(target, settings, move |ports| {
            let (ports, counters) = stackhouse::adapters::counting::wrap(ports);
            *keep.lock().unwrap_or_else(|p| p.into_inner()) = Some(counters);
            ports
        })
        .await;
        let counters = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        (server, counters.expect("the ports were wrapped"))
    }

    /// Starts an emulator whose ports are wrapped by `wrap` (e.g. to inject faults at the port
    /// boundary) before anything, the bootstrap included, uses them.
    pub async fn start_wrapped(
        target: Target,
        settings: Settings,
        wrap: impl FnOnce(stackhouse::ports::Ports) -> stackhouse::ports::Ports,
    ) -> TestServer {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let addr = listener.local_addr().expect("local addr");
        let base = format!("http://{addr}");
        let (backend, data_dir, aws, tagname, moto) = match target {
            Target::Embedded => {
                (Backend::Embedded, Some(unique_dir("embedded")), None, "embedded", None)
            }
            Target::Aws { endpoint, tag, guard } => {
                let cfg = crate::moto::aws_config_for(&endpoint, tag);
                stackhouse::adapters::aws::provision(&cfg)
                    .await
                    .expect("provision AWS resources on moto");
                (Backend::Aws, None, Some(cfg), "aws", guard)
            }
            Target::AwsServices { endpoints, tag } => {
                let mut cfg = crate::moto::aws_config_for("http://unused.invalid", tag);
                cfg.endpoint_url = None;
                cfg.service_endpoints = endpoints;
                stackhouse::adapters::aws::provision(&cfg)
                    .await
                    .unwrap_or_else(|e| panic!("provision AWS resources per service: {e}"));
                (Backend::Aws, None, Some(cfg), "aws", None)
            }
        };
        let config = Config {
            listen: addr,
            data_dir: data_dir.clone().unwrap_or_else(|| unique_dir("unused")),
            backend,
            aws_endpoint_url: None,
            aws: aws.clone(),
            settings,
        };
        let (app, served) = local_emulator::build_app(&config, &base).await.expect("build app");
        let app = App::new(wrap(app.ports.clone()), app.settings.clone());
        // Deployment runners: tasks of this process (there is no emulator binary to start
        // here), talking to the server over HTTP like the emulator's child processes.
        app.launcher.set(std::sync::Arc::new(local_emulator::launcher::TaskLauncher {
            url: base.clone(),
            work_root: unique_dir("runs"),
        }));
        let user = format!("user-{tagname}");
        let token = format!("pul-test-{:016x}", rand_u64());
        let b = bootstrap::Bootstrap {
            token: Some(token.clone()),
            user: user.clone(),
            org: user.clone(),
        };
        bootstrap::run(&app, &b).await.expect("bootstrap");
        let server = server::serve(listener, app.clone(), served.verifier).expect("serve");
        let hub = served.hub;
        TestServer { base, token, user, app, hub, server: Some(server), data_dir, aws, _moto: moto }
    }

    /// The embedded store's data directory (None on AWS).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_deref()
    }

    /// The AWS adapters' configuration (None on the embedded store).
    pub fn aws_config(&self) -> Option<&stackhouse::adapters::aws::AwsConfig> {
        self.aws.as_ref()
    }

    /// A client using the bootstrap token.
    pub fn client(&self) -> Client {
        Client::new(&self.base, Some(&self.token))
    }

    /// A client with another token (or none).
    pub fn client_with(&self, token: Option<&str>) -> Client {
        Client::new(&self.base, token)
    }

    /// Creates another user with their own organization and returns a client for them.
    pub async fn other_user(&self, name: &str) -> Client {
        let token = format!("pul-other-{:016x}", rand_u64());
        let b = bootstrap::Bootstrap {
            token: Some(token.clone()),
            user: name.into(),
            org: name.into(),
        };
        bootstrap::run(&self.app, &b).await.expect("bootstrap other user");
        self.client_with(Some(&token))
    }

    /// Serves the event stream's WebSocket on a free port with its fan-out job running, as
    /// `local-emulator serve` does.
    pub async fn sockets(&self) -> Sockets {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let server = local_emulator::sockets::serve(listener, self.app.clone(), self.hub.clone())
            .expect("serve the WebSocket");
        let url = format!("ws://{}", server.addr);
        if let Some(http) = &self.server {
            http.set_events_url(&url).expect("a WebSocket URL");
        }
        let jobs = local_emulator::jobs::RunnerConfig {
            jobs: vec![&stackhouse::jobs::table::JOB_FEED_FANOUT],
            ..Default::default()
        };
        let jobs = local_emulator::jobs::start(self.app.clone(), &jobs);
        Sockets { url, server, jobs }
    }

    /// Runs the search indexing job on this server's events, as `local-emulator serve` does
    /// (start it before the changes it should index).
    pub fn indexing(&self) -> local_emulator::jobs::JobRunner {
        let jobs = local_emulator::jobs::RunnerConfig {
            jobs: vec![&stackhouse::jobs::table::JOB_SEARCH_INDEX],
            ..Default::default()
        };
        local_emulator::jobs::start(self.app.clone(), &jobs)
    }

    /// Runs `job-deployment-start` on this server's queue, as `local-emulator serve` does
    /// (polling every 100 ms when idle, so runs start promptly).
    pub fn deploying(&self) -> local_emulator::jobs::JobRunner {
        let jobs = local_emulator::jobs::RunnerConfig {
            jobs: vec![&stackhouse::jobs::table::JOB_DEPLOYMENT_START],
            idle_poll: std::time::Duration::from_millis(100),
            ..Default::default()
        };
        local_emulator::jobs::start(self.app.clone(), &jobs)
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The event stream's WebSocket of a [`TestServer`], with its fan-out running.
pub struct Sockets {
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    server: local_emulator::sockets::SocketServer,
    jobs: local_emulator::jobs::JobRunner,
}

impl Sockets {
    /// Stops the WebSocket server and the fan-out.
    pub async fn stop(self) {
        self.server.stop().await;
        self.jobs.stop().await;
    }
}

/// A response: status, headers and body (gzip already undone).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes (decompressed when the server gzipped them).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body text when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body))
        })
    }

    /// Asserts a Pulumi error body with `code` equal to the status, and returns its message.
    pub fn error_message(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&self.body));
        let v = self.json();
        assert_eq!(v["code"], status, "error body code must equal the status: {v}");
        v["message"]
            .as_str()
            .unwrap_or_else(|| panic!("error body without message: {v}"))
            .to_string()
    }
}

/// An HTTP client that sends what the Pulumi CLI sends (docs/PROTOCOL-NOTES.md, Request headers).
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    recorder: Option<Arc<crate::load::Recorder>>,
}

/// gzip-compresses bytes.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

impl Client {
    fn new(base: &str, token: Option<&str>) -> Client {
        Client {
            base: base.to_string(),
            token: token.map(str::to_string),
            http: reqwest::Client::new(),
            recorder: None,
        }
    }

    /// A client for any server at `base` (no trailing `/`) that reports every request's
    /// latency and bytes to `recorder` (the load generator's measurements).
    pub fn recording(base: &str, token: &str, recorder: Arc<crate::load::Recorder>) -> Client {
        Client { recorder: Some(recorder), ..Client::new(base, Some(token)) }
    }

    /// Sends a request with an optional body, optionally gzip-compressed.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        gzip_body: bool,
    ) -> Reply {
        let auth = self.token.as_ref().map(|t| format!("token {t}"));
        self.send_auth(method, path, auth, body, gzip_body).await
    }

    /// Sends a request with the given `Authorization` value (e.g. `update-token …`).
    pub async fn send_auth(
        &self,
        method: Method,
        path: &str,
        authorization: Option<String>,
        body: Option<Vec<u8>>,
        gzip_body: bool,
    ) -> Reply {
        let label = self.recorder.as_ref().map(|_| crate::load::route_label(&method, path));
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("Accept", "application/vnd.pulumi+9")
            .header("Accept-Encoding", "gzip")
            .header("Content-Type", "application/json")
            .header("User-Agent", "pulumi-cli/1 (v3.200.0; linux)");
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let (mut raw_len, mut wire_len) = (0, 0);
        if let Some(b) = body {
            raw_len = b.len();
            if gzip_body {
                let gz = gzip(&b);
                wire_len = gz.len();
                req = req.header("Content-Encoding", "gzip").body(gz);
            } else {
                wire_len = b.len();
                req = req.body(b);
            }
        }
        let started = std::time::Instant::now();
        let resp = req.send().await.expect("request failed");
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.bytes().await.expect("read body").to_vec();
        if let (Some(r), Some(label)) = (&self.recorder, label) {
            r.record(label, started.elapsed(), raw_len, wire_len, raw.len());
        }
        let body = if headers.get("content-encoding").map(|v| v == "gzip").unwrap_or(false) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).expect("gunzip response");
            out
        } else {
            raw
        };
        Reply { status, headers, body }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, false).await
    }
    /// HEAD.
    pub async fn head(&self, path: &str) -> Reply {
        self.send(Method::HEAD, path, None, false).await
    }
    /// DELETE.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, false).await
    }
    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body.to_string().into_bytes()), false).await
    }
    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body.to_string().into_bytes()), false).await
    }
    /// PATCH with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body.to_string().into_bytes()), false).await
    }
    /// PATCH with a gzip-compressed JSON body, as the CLI sends checkpoints.
    pub async fn patch_gz(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body.to_string().into_bytes()), true).await
    }
}

// ----------------------------------------------------------------------------------------
// The Lambda transport: API Gateway HTTP API events through `stackhouse_lambda::handle`.
// ----------------------------------------------------------------------------------------

/// The host name sample events and [`apigw_event`] put in `Host` and `requestContext`.
pub const APIGW_HOST: &str = "abc123defg.execute-api.us-east-1.amazonaws.com";

/// An API Gateway HTTP API event (payload format 2.0) for a request on `route`, as API Gateway
/// hands it to the route's function: `routeKey`, `rawPath`, `rawQueryString`, lower-case
/// `headers` (plus the ones API Gateway adds), `pathParameters` matched from the template,
/// and the body: base64-encoded when it is binary (any `Content-Encoding`, e.g. the CLI's
/// gzip, or not UTF-8), as text otherwise — what API Gateway does.
pub fn apigw_event(
    route: &stackhouse::api::Route,
    raw_path: &str,
    raw_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Value {
    use base64::Engine;
    let mut h = serde_json::Map::new();
    for (name, value) in [
        ("host", APIGW_HOST),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
        ("x-amzn-trace-id", "Root=1-67d1dd0e-0123456789abcdef01234567"),
    ] {
        h.insert(name.into(), Value::String(value.into()));
    }
    for (name, value) in headers {
        h.insert(name.to_ascii_lowercase(), Value::String((*value).to_string()));
    }
    if let Some(b) = body {
        h.insert("content-length".into(), Value::String(b.len().to_string()));
    }
    let mut params = serde_json::Map::new();
    for (t, v) in route.path.split('/').zip(raw_path.split('/')) {
        if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            params.insert(name.into(), Value::String(v.into()));
        }
    }
    let route_key = format!("{} {}", route.method, route.path);
    let user_agent = h.get("user-agent").cloned().unwrap_or(Value::String(String::new()));
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": APIGW_HOST,
            "domainPrefix": "abc123defg",
            "http": {
                "method": route.method.as_str(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": user_agent,
            },
            "requestId": "HbTzsj2VoAMEb3A=",
            "routeKey": route_key,
            "stage": "$default",
            "time": "12/Mar/2025:19:03:58 +0000",
            "timeEpoch": 1741806238000i64,
        },
        "isBase64Encoded": false,
    });
    if !params.is_empty() {
        event["pathParameters"] = Value::Object(params);
    }
    if !raw_query.is_empty() {
        let q: serde_json::Map<String, Value> =
            url_pairs(raw_query).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        event["queryStringParameters"] = Value::Object(q);
    }
    if let Some(b) = body {
        let encoded = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-encoding"));
        match std::str::from_utf8(b) {
            Ok(text) if !encoded => event["body"] = Value::String(text.to_string()),
            _ => {
                event["isBase64Encoded"] = Value::Bool(true);
                event["body"] = Value::String(base64::engine::general_purpose::STANDARD.encode(b));
            }
        }
    }
    event
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Runs an API Gateway event through `stackhouse_lambda::handle` with `router`, exactly as a
/// function binary does (the event deserialised by `lambda_http`), and returns the raw
/// response.
pub async fn invoke_lambda_raw(
    router: &stackhouse::api::Router,
    app: &Arc<App>,
    event: &Value,
) -> lambda_http::Response<lambda_http::Body> {
    let request = lambda_http::request::from_str(&event.to_string())
        .unwrap_or_else(|e| panic!("lambda_http rejects the event ({e}): {event}"));
    stackhouse_lambda::handle(router, app, request).await
}

/// Like [`invoke_lambda_raw`], with the response decoded like the CLI does (gzip undone).
pub async fn invoke_lambda(
    router: &stackhouse::api::Router,
    app: &Arc<App>,
    event: &Value,
) -> Reply {
    lambda_reply(invoke_lambda_raw(router, app, event).await)
}

/// Decodes a function's response: status, headers, body with gzip undone.
pub fn lambda_reply(resp: lambda_http::Response<lambda_http::Body>) -> Reply {
    let (parts, body) = resp.into_parts();
    let raw: Vec<u8> = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    };
    let body = if parts.headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).expect("gunzip response");
        out
    } else {
        raw
    };
    Reply { status: parts.status, headers: parts.headers, body }
}
