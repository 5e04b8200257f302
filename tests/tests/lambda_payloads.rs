//! Payload limits through the Lambda code path (docs/ARCHITECTURE.md, Payload limits): API
//! Gateway events run through
//! `stackhouse_lambda::handle` with the router a function binary builds
//! (`stackhouse_lambda::router`), on the embedded backend. Presigned URLs point at an emulator
//! serving the same data directory, the embedded stand-in for S3.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use stackhouse::api::{routes, Route, Router};
use stackhouse::app::Settings;
use stackhouse::App;
use stackhouse_lambda::MAX_RESPONSE_BYTES;
use stackhouse_tests::server::{apigw_event, gzip, invoke_lambda, Target, TestServer};

const UA: &str = "pulumi-cli/1 (v3.200.0; linux)";

fn router(route: &'static Route) -> Router {
    stackhouse_lambda::router(route).expect("router")
}

/// The headers the CLI sends with a user token.
fn cli_headers(token: &str, gzipped_body: bool) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("accept", "application/vnd.pulumi+9".to_string()),
        ("accept-encoding", "gzip".to_string()),
        ("authorization", format!("token {token}")),
        ("content-type", "application/json".to_string()),
        ("user-agent", UA.to_string()),
    ];
    if gzipped_body {
        h.push(("content-encoding", "gzip".to_string()));
    }
    h
}

fn event(
    route: &'static Route,
    path: &str,
    query: &str,
    headers: &[(&'static str, String)],
    body: Option<&[u8]>,
) -> Value {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    apigw_event(route, path, query, &h, body)
}

/// A deterministic stream of hex digits (xorshift64*), so outputs differ between resources
/// the way real ids, hashes and ARNs do, and gzip cannot shrink them away.
struct Hex(u64);

impl Hex {
    fn take(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
            s.push_str(&format!("{v:016x}"));
        }
        s.truncate(n);
        s
    }
}

/// An `UntypedDeployment` (v3) of `stack` at least `min_bytes` long: a stack, a provider and
/// bucket objects whose inputs and outputs vary like real ones (ids, etags, ARNs, contents).
fn deployment(project: &str, stack: &str, min_bytes: usize, seed: u64) -> Vec<u8> {
    let mut hex = Hex(seed | 1);
    let stack_urn =
        format!("urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}");
    let provider_urn =
        format!("urn:pulumi:{stack}::{project}::pulumi:providers:aws::default_6_66_0");
    let provider_id = "b6c1a5f0-6d2e-4f0a-9e51-2f6f1d0c8a77";
    let mut out = String::with_capacity(min_bytes + 4096);
    out.push_str(&format!(
        r#"{{"version":3,"deployment":{{"manifest":{{"time":"2025-03-12T19:03:58.123456789Z","magic":"{}","version":"v3.200.0"}},"secrets_providers":{{"type":"service","state":{{"url":"https://api.example.com","owner":"acme","project":"{project}","stack":"{stack}"}}}},"resources":["#,
        hex.take(64)
    ));
    out.push_str(&json!({"urn": stack_urn, "custom": false, "type": "pulumi:pulumi:Stack", "outputs": {}, "created": "2025-03-12T19:03:58Z", "modified": "2025-03-12T19:03:58Z"}).to_string());
    out.push(',');
    out.push_str(&json!({"urn": provider_urn, "custom": true, "id": provider_id, "type": "pulumi:providers:aws", "inputs": {"region": "us-east-1", "version": "6.66.0"}, "outputs": {"region": "us-east-1", "version": "6.66.0"}, "created": "2025-03-12T19:03:58Z", "modified": "2025-03-12T19:03:58Z"}).to_string());
    let mut i = 0usize;
    while out.len() < min_bytes {
        let name = format!("object-{i:06}");
        let bucket = format!("acme-data-{}-{}", i % 37, hex.take(8));
        let key = format!("reports/{}/{}/{}.json", i % 101, hex.take(6), hex.take(12));
        let content = hex.take(96);
        let etag = hex.take(32);
        let r = json!({
            "urn": format!("urn:pulumi:{stack}::{project}::aws:s3/bucketObjectv2:BucketObjectv2::{name}"),
            "custom": true,
            "id": key,
            "type": "aws:s3/bucketObjectv2:BucketObjectv2",
            "inputs": {"bucket": bucket, "key": key, "content": content, "contentType": "application/json",
                       "tags": {"team": "data", "index": i.to_string()}},
            "outputs": {"arn": format!("arn:aws:s3:::{bucket}/{key}"), "bucket": bucket, "key": key,
                        "content": content, "contentType": "application/json", "etag": etag,
                        "versionId": hex.take(32), "serverSideEncryption": "AES256",
                        "storageClass": "STANDARD", "forceDestroy": false,
                        "tags": {"team": "data", "index": i.to_string()},
                        "tagsAll": {"team": "data", "index": i.to_string()}},
            "parent": stack_urn,
            "provider": format!("{provider_urn}::{provider_id}"),
            "propertyDependencies": {"bucket": [], "content": [], "key": []},
            "created": "2025-03-12T19:03:58Z",
            "modified": "2025-03-12T19:03:58Z",
        });
        out.push(',');
        out.push_str(&r.to_string());
        i += 1;
    }
    out.push_str("]}}");
    out.into_bytes()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).expect("gunzip");
    out
}

async fn create_stack(srv: &TestServer, project: &str, stack: &str) -> String {
    let org = &srv.user;
    let r = srv
        .client()
        .post(&format!("/api/stacks/{org}/{project}"), &json!({"stackName": stack}))
        .await;
    assert_eq!(r.status, 200, "create stack: {r:?}");
    format!("/api/stacks/{org}/{project}/{stack}")
}

fn gzip_fast(data: &[u8]) -> Vec<u8> {
    stackhouse::service::deployments::gzip(data).expect("gzip").to_vec()
}

/// `POST …/import` through the stack-import function with a gzip body, as the CLI sends it.
async fn import(srv: &TestServer, stack_path: &str, untyped: &[u8]) {
    let body = gzip_fast(untyped);
    let e = event(
        &routes::STACK_IMPORT,
        &format!("{stack_path}/import"),
        "",
        &cli_headers(&srv.token, true),
        Some(&body),
    );
    let r = invoke_lambda(&router(&routes::STACK_IMPORT), &srv.app, &e).await;
    assert_eq!(r.status, 200, "import: {}", String::from_utf8_lossy(&r.body));
}

async fn export_raw(
    app: &Arc<App>,
    router: &Router,
    token: &str,
    path: &str,
    accept_gzip: bool,
) -> lambda_http::Response<lambda_http::Body> {
    let mut headers = cli_headers(token, false);
    if !accept_gzip {
        headers.retain(|(k, _)| *k != "accept-encoding");
    }
    let route = if path.ends_with("/export") {
        &routes::STACK_EXPORT
    } else {
        &routes::STACK_EXPORT_VERSION
    };
    let e = event(route, path, "", &headers, None);
    stackhouse_tests::server::invoke_lambda_raw(router, app, &e).await
}

fn body_bytes(body: &lambda_http::Body) -> &[u8] {
    match body {
        lambda_http::Body::Text(t) => t.as_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => &[],
    }
}

/// Follows a redirect the way the CLI's Go client does (no credentials to another host; the
/// CLI's own `Accept-Encoding: gzip`) and returns the decompressed body, checking that the
/// response says `Content-Encoding: gzip` and JSON.
async fn follow(location: &str) -> Vec<u8> {
    // reqwest runs without its gzip feature here: the bytes arrive as sent.
    let resp = reqwest::Client::new()
        .get(location)
        .header("Accept-Encoding", "gzip")
        .header("User-Agent", UA)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {location}: {e}"));
    assert_eq!(resp.status(), 200, "presigned GET {location}");
    let enc: Vec<_> = resp.headers().get_all("content-encoding").iter().cloned().collect();
    assert_eq!(enc, ["gzip"], "the CLI decompresses by exactly one Content-Encoding: gzip");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw = resp.bytes().await.expect("body");
    eprintln!("presigned object: {} bytes of gzip", raw.len());
    gunzip(&raw)
}

/// A 50 MB state: its export through the stack-export function is a 307 to a presigned URL of
/// the stored gzip object, which serves exactly the imported deployment; so is the export of
/// that version; a small export is a plain 200 with a gzip body.
#[tokio::test(flavor = "multi_thread")]
async fn large_export_redirects_to_the_stored_gzip_object() {
    let srv = TestServer::start(Target::Embedded).await;
    let t = Instant::now();
    let big = deployment("bigproj", "big", 50 * 1024 * 1024, 0x5eed_1234_abcd);
    assert!(big.len() >= 50 * 1024 * 1024);
    eprintln!("deployment: {} bytes, generated in {:?}", big.len(), t.elapsed());
    let path = create_stack(&srv, "bigproj", "big").await;
    // A real Lambda would refuse this request (megabytes of gzip) before our code runs: large
    // states reach the store through delta checkpoints or journal entries instead.
    import(&srv, &path, &big).await;
    eprintln!("imported after {:?}", t.elapsed());

    let export = router(&routes::STACK_EXPORT);
    for (path, route) in [
        (format!("{path}/export"), &export),
        (format!("{path}/export/1"), &router(&routes::STACK_EXPORT_VERSION)),
    ] {
        let resp = export_raw(&srv.app, route, &srv.token, &path, true).await;
        assert_eq!(
            resp.status(),
            307,
            "{path}: the gzip of the test state ({} bytes) must exceed the limit and redirect",
            body_bytes(resp.body()).len()
        );
        assert!(body_bytes(resp.body()).is_empty(), "a redirect has no body");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert!(resp.headers().get("x-pulumi-request-id").is_some());
        let location = resp.headers()["location"].to_str().expect("ascii location").to_string();
        assert!(
            location.starts_with(&format!("{}/_stackhouse/blobs/", srv.base)),
            "the embedded store's presigned URL: {location}"
        );
        let got = follow(&location).await;
        assert!(got == big, "{path}: the redirect must serve exactly the imported deployment");
    }
    // A client that does not take gzip is redirected too (the stored object is gzip; S3 cannot
    // decode it), without the function decompressing 50 MB first.
    let resp = export_raw(&srv.app, &export, &srv.token, &format!("{path}/export"), false).await;
    assert_eq!(resp.status(), 307);
    // The emulator has no response limit: the same export is a plain 200 there.
    let r = srv.client().get(&format!("{path}/export")).await;
    assert_eq!(r.status, 200);
    assert!(r.body == big);
    drop(big);

    // A small state: a plain 200 with the stored gzip body.
    let small_path = create_stack(&srv, "bigproj", "small").await;
    let small = deployment("bigproj", "small", 200 * 1024, 42);
    import(&srv, &small_path, &small).await;
    let resp =
        export_raw(&srv.app, &export, &srv.token, &format!("{small_path}/export"), true).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert!(resp.headers().get("location").is_none());
    let raw = body_bytes(resp.body());
    assert!(raw.len() < MAX_RESPONSE_BYTES);
    assert!(gunzip(raw) == small, "the small export decompresses to the imported deployment");
    eprintln!("done after {:?}", t.elapsed());
}

/// The size checks around the limit, with a small limit: a blob-backed reply that fits gzipped
/// is sent; decompressed for a client without gzip it outgrows the limit and redirects; a
/// reply with no blob behind it is sent as is (logged), never turned into an error.
#[tokio::test(flavor = "multi_thread")]
async fn response_limit_applies_to_the_bytes_sent() {
    let srv = TestServer::start(Target::Embedded).await;
    let path = create_stack(&srv, "proj", "mid").await;
    let untyped = deployment("proj", "mid", 256 * 1024, 7);
    import(&srv, &path, &untyped).await;
    let gz_len = stackhouse::service::deployments::gzip(&untyped).expect("gzip").len();
    let limit = gz_len + 1024;
    assert!(limit < untyped.len());
    let export =
        Router::new(&[&routes::STACK_EXPORT]).expect("router").with_max_response_bytes(Some(limit));
    let resp = export_raw(&srv.app, &export, &srv.token, &format!("{path}/export"), true).await;
    assert_eq!(resp.status(), 200, "fits gzipped");
    let resp = export_raw(&srv.app, &export, &srv.token, &format!("{path}/export"), false).await;
    assert_eq!(resp.status(), 307, "decompressed it does not fit");
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    assert!(follow(&location).await == untyped);

    // Over the limit with no blob behind it: sent anyway.
    let user = Router::new(&[&routes::USER_GET]).expect("router").with_max_response_bytes(Some(10));
    let e = event(&routes::USER_GET, "/api/user", "", &cli_headers(&srv.token, false), None);
    let r = invoke_lambda(&user, &srv.app, &e).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["githubLogin"], srv.user.as_str());

    // The function router carries Lambda's limit; the emulator's has none.
    assert_eq!(router(&routes::STACK_EXPORT).max_response_bytes, Some(MAX_RESPONSE_BYTES));
    assert_eq!(Router::new(routes::ROUTES).expect("router").max_response_bytes, None);
}

/// Request bodies over the limits get a 413 Pulumi error body through the function too: over
/// `max_request_bytes` as sent, and over `max_decoded_bytes` once gunzipped.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_import_bodies_get_413_json() {
    let settings =
        Settings { max_request_bytes: 1 << 20, max_decoded_bytes: 4 << 20, ..Settings::default() };
    let srv = TestServer::start_with(Target::Embedded, settings).await;
    let path = create_stack(&srv, "proj", "limits").await;
    let import = router(&routes::STACK_IMPORT);

    // As sent: 1 MiB + 1 of (incompressible) gzip.
    let mut hex = Hex(99);
    let too_big = hex.take((1 << 20) + 1).into_bytes();
    let e = event(
        &routes::STACK_IMPORT,
        &format!("{path}/import"),
        "",
        &cli_headers(&srv.token, false),
        Some(&too_big),
    );
    let r = invoke_lambda(&import, &srv.app, &e).await;
    let message = r.error_message(413);
    assert!(message.contains("limit"), "{message}");
    assert_eq!(r.headers["content-type"], "application/json");

    // Decoded: a small gzip body that inflates past 4 MiB.
    let bomb = gzip(&vec![b' '; (4 << 20) + 1]);
    assert!(bomb.len() < 1 << 20);
    let e = event(
        &routes::STACK_IMPORT,
        &format!("{path}/import"),
        "",
        &cli_headers(&srv.token, true),
        Some(&bomb),
    );
    let r = invoke_lambda(&import, &srv.app, &e).await;
    r.error_message(413);

    // Just under both limits: accepted.
    let ok = deployment("proj", "limits", 512 * 1024, 5);
    let e = event(
        &routes::STACK_IMPORT,
        &format!("{path}/import"),
        "",
        &cli_headers(&srv.token, true),
        Some(&gzip(&ok)),
    );
    let r = invoke_lambda(&import, &srv.app, &e).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
