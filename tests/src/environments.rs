//! Environments (Pulumi ESC's REST API, `/api/esc/environments`) over real HTTP, as the CLI's
//! `pulumi env` and a stack's `environment:` call them: definitions as YAML with revisions and
//! ETags, diagnostics for definitions that do not evaluate, secrets encrypted at rest, checks
//! and open sessions, imports, revision and environment tags, retraction, deletion protection,
//! clones, and what non-members can reach. The `environments_tests!` macro runs every check
//! against one backend.

use reqwest::Method;
use serde_json::{json, Value};

use crate::server::{Client, Reply, Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! environments_tests {
    ($target:expr) => {
        $crate::environments_tests!(@each $target;
            create_list_and_get,
            updates_make_revisions_and_honour_if_match,
            invalid_definitions_are_refused_with_diagnostics,
            secrets_are_encrypted_at_rest,
            versions_serve_older_revisions,
            yaml_check_evaluates_without_storing,
            open_sessions_show_secrets_until_they_expire,
            yaml_open_merges_imports,
            revisions_list_newest_first,
            revision_tags_name_revisions,
            retracted_revisions_read_as_their_replacement,
            environment_tags_crud,
            deletion_protection_blocks_delete,
            clones_reencrypt_secrets,
            non_members_cannot_reach_environments
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::environments::$name(make(stringify!($name))).await;
            }
        )*
    };
}

pub(crate) const ROOT: &str = "/api/esc/environments";

/// A definition with one secret, `pw`, whose plaintext is `hunter2`.
const WITH_SECRET: &str = "values:\n  user: admin\n  pw:\n    fn::secret: hunter2\n";

/// Status and body, for failure messages.
pub(crate) fn show(r: &Reply) -> String {
    format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
}

fn text(r: &Reply) -> String {
    String::from_utf8(r.body.clone()).expect("a UTF-8 body")
}

/// `…/{org}/{project}/{name}`.
fn at(org: &str, project: &str, name: &str) -> String {
    format!("{ROOT}/{org}/{project}/{name}")
}

/// Creates `project/name` in `org`; returns its path.
pub(crate) async fn create(c: &Client, org: &str, project: &str, name: &str) -> String {
    let r = c.post(&format!("{ROOT}/{org}"), &json!({"project": project, "name": name})).await;
    assert_eq!(r.status, 200, "create {project}/{name}: {}", show(&r));
    at(org, project, name)
}

/// Sends a YAML body as the CLI does (labelled application/json).
async fn send_yaml(c: &Client, method: Method, path: &str, yaml: &str) -> Reply {
    c.send(method, path, Some(yaml.as_bytes().to_vec()), false).await
}

/// PATCHes a definition; returns the reply.
pub(crate) async fn put(c: &Client, path: &str, yaml: &str) -> Reply {
    send_yaml(c, Method::PATCH, path, yaml).await
}

/// PATCHes a definition with `If-Match: etag` (the shared client sends no extra headers).
async fn put_if_match(srv: &TestServer, path: &str, yaml: &str, etag: &str) -> Reply {
    let resp = reqwest::Client::new()
        .patch(format!("{}{path}", srv.base))
        .header("Accept", "application/vnd.pulumi+9")
        .header("Authorization", format!("token {}", srv.token))
        .header("Content-Type", "application/json")
        .header("If-Match", etag)
        .body(yaml.to_string())
        .send()
        .await
        .expect("request failed");
    let (status, headers) = (resp.status(), resp.headers().clone());
    Reply { status, headers, body: resp.bytes().await.expect("read body").to_vec() }
}

/// Stores a definition; returns the new revision.
pub(crate) async fn set(c: &Client, path: &str, yaml: &str) -> i64 {
    let r = put(c, path, yaml).await;
    assert_eq!(r.status, 200, "update {path}: {}", show(&r));
    revision(&r)
}

/// The `Pulumi-ESC-Revision` header.
fn revision(r: &Reply) -> i64 {
    r.headers
        .get("pulumi-esc-revision")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no integer Pulumi-ESC-Revision: {:?} {}", r.headers, show(r)))
}

fn etag(r: &Reply) -> String {
    let tag = r.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(!tag.is_empty(), "no ETag: {:?}", r.headers);
    tag.to_string()
}

/// GETs a definition (`path` may end in `/decrypt`, `/versions/{v}`, …): text and revision.
async fn read(c: &Client, path: &str) -> (String, i64) {
    let r = c.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", show(&r));
    (text(&r), revision(&r))
}

/// Asserts a decrypted definition shows `secret` in the clear and no ciphertext.
fn assert_plain(text: &str, secret: &str) {
    assert!(text.contains("fn::secret") && text.contains(secret), "not in the clear: {text}");
    assert!(!text.contains("ciphertext"), "a ciphertext left: {text}");
}

/// Asserts a 400 with diagnostics, each with a summary and a range; returns them.
pub(crate) fn diagnostics(r: &Reply) -> Vec<Value> {
    r.error_message(400);
    let v = r.json();
    let diags = v["diagnostics"].as_array().cloned().unwrap_or_default();
    assert!(!diags.is_empty(), "a 400 without diagnostics: {v}");
    for d in &diags {
        assert!(d["summary"].as_str().is_some_and(|s| !s.is_empty()), "no summary: {d}");
        for pos in ["begin", "end"] {
            for field in ["line", "column"] {
                let n = d["range"][pos][field].as_u64();
                assert!(n.is_some_and(|n| n >= 1), "no range.{pos}.{field}: {d}");
            }
        }
    }
    diags
}

/// Whether some diagnostic's summary contains `word`.
pub(crate) fn mentions(diags: &[Value], word: &str) -> bool {
    diags.iter().any(|d| d["summary"].as_str().unwrap_or_default().contains(word))
}

/// The `ciphertext:` values of a stored definition.
fn ciphertexts(text: &str) -> Vec<String> {
    text.split("ciphertext:")
        .skip(1)
        .map(|rest| {
            let end = rest.trim_start();
            let token = end.split(|c: char| c.is_whitespace() || c == '}' || c == ',').next();
            token.unwrap_or_default().trim_matches(['"', '\'']).to_string()
        })
        .collect()
}

/// The unwrapped value at a dotted path of an evaluated environment's `properties`.
pub(crate) fn prop(env: &Value, path: &str) -> Value {
    let mut at = &env["properties"];
    for (i, key) in path.split('.').enumerate() {
        at = if i == 0 { &at[key] } else { &at["value"][key] };
    }
    at["value"].clone()
}

/// Every environment listed at `url` (following `nextToken`), as `org/project/name`.
async fn listed(c: &Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..50 {
        let r = c.get(&format!("{url}?continuationToken={token}")).await;
        assert_eq!(r.status, 200, "{url}: {}", show(&r));
        let v = r.json();
        for e in v["environments"].as_array().unwrap_or_else(|| panic!("no list: {v}")) {
            let field =
                |f: &str| e[f].as_str().unwrap_or_else(|| panic!("no {f}: {e}")).to_string();
            out.push(format!("{}/{}/{}", field("organization"), field("project"), field("name")));
        }
        match v["nextToken"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_string(),
            _ => return out,
        }
    }
    panic!("{url}: more than 50 pages");
}

/// Opens a named environment for `duration`; returns the session id.
pub(crate) async fn open(c: &Client, path: &str, duration: &str) -> String {
    let r = c.send(Method::POST, &format!("{path}/open?duration={duration}"), None, false).await;
    assert_eq!(r.status, 200, "open {path}: {}", show(&r));
    let id = r.json()["id"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()), "id {id:?}");
    id
}

/// Opens an anonymous definition in `org` and reads the session back.
async fn yaml_open(c: &Client, org: &str, body: &Value) -> Value {
    let r = c.post(&format!("{ROOT}/{org}/yaml/open?duration=2h0m0s"), body).await;
    assert_eq!(r.status, 200, "open {body}: {}", show(&r));
    let id = r.json()["id"].as_str().expect("id").to_string();
    let r = c.get(&format!("{ROOT}/{org}/yaml/open/{id}")).await;
    assert_eq!(r.status, 200, "read {id}: {}", show(&r));
    r.json()
}

/// Revisions, newest first.
async fn revisions(c: &Client, path: &str, query: &str) -> Vec<Value> {
    let r = c.get(&format!("{path}/versions?{query}")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    r.json().as_array().cloned().unwrap_or_else(|| panic!("not an array: {}", show(&r)))
}

fn numbers(revs: &[Value]) -> Vec<i64> {
    revs.iter().map(|r| r["number"].as_i64().expect("number")).collect()
}

fn names(tags: &Value) -> Vec<String> {
    let list = tags["tags"].as_array().unwrap_or_else(|| panic!("no tags: {tags}"));
    list.iter().map(|t| t["name"].as_str().expect("name").to_string()).collect()
}

/// Create answers the new environment; duplicates are 409, bad names 400; lists are by
/// project then name, per organization or over all the caller's organizations; a new
/// environment reads as revision 1 with an empty definition.
pub async fn create_list_and_get(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let r = c.post(&format!("{ROOT}/{org}"), &json!({"project": "web", "name": "prod"})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let v = r.json();
    assert_eq!(
        (&v["organization"], &v["project"], &v["name"]),
        (&json!(org), &json!("web"), &json!("prod"))
    );
    for field in ["id", "created", "modified"] {
        assert!(v[field].as_str().is_some_and(|s| !s.is_empty()), "no {field}: {v}");
    }
    create(&c, &org, "web", "dev").await;
    create(&c, &org, "api", "prod").await;
    let again = c.post(&format!("{ROOT}/{org}"), &json!({"project": "web", "name": "prod"})).await;
    again.error_message(409);
    let bad =
        c.post(&format!("{ROOT}/{org}"), &json!({"project": "web", "name": "bad name!"})).await;
    bad.error_message(400);
    let mine = [format!("{org}/api/prod"), format!("{org}/web/dev"), format!("{org}/web/prod")];
    assert_eq!(listed(&c, &format!("{ROOT}/{org}")).await, mine);

    let r = c.get(&at(&org, "web", "prod")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert!(r.body.is_empty(), "a new environment has an empty definition: {}", show(&r));
    assert_eq!(revision(&r), 1);
    etag(&r);
    let kind = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(kind.starts_with("application/x-yaml"), "content-type {kind:?}");
    c.get(&at(&org, "web", "nope")).await.error_message(404);

    // Another organization, which the caller joins: listed over all orgs, not in the first.
    let olga = srv.other_user("olga-envs").await;
    create(&olga, "olga-envs", "ops", "shared").await;
    let r =
        olga.post(&format!("/api/orgs/olga-envs/members/{org}"), &json!({"role": "member"})).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    assert_eq!(listed(&c, &format!("{ROOT}/{org}")).await, mine);
    let mut all = listed(&c, ROOT).await;
    all.sort();
    let mut want = mine.to_vec();
    want.push("olga-envs/ops/shared".into());
    want.sort();
    assert_eq!(all, want);
    assert_eq!(listed(&olga, ROOT).await, ["olga-envs/ops/shared"]);
    srv.stop().await;
}

/// Each update is a new revision, read back verbatim; an update `If-Match` a stale ETag is
/// refused with 409 and stores nothing; one with the current ETag goes through.
pub async fn updates_make_revisions_and_honour_if_match(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = create(&c, &srv.user, "web", "app").await;
    let first = etag(&c.get(&path).await);
    let hello = "values:\n  greeting: hello # a comment stays\n";
    assert_eq!(set(&c, &path, hello).await, 2);
    assert_eq!(read(&c, &path).await, (hello.to_string(), 2));

    let r = put_if_match(&srv, &path, "values:\n  greeting: stale\n", &first).await;
    r.error_message(409);
    assert_eq!(read(&c, &path).await, (hello.to_string(), 2), "a refused update stores nothing");

    let current = etag(&c.get(&path).await);
    let bye = "values:\n  greeting: bye\n";
    let r = put_if_match(&srv, &path, bye, &current).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(revision(&r), 3);
    assert_eq!(read(&c, &path).await, (bye.to_string(), 3));
    srv.stop().await;
}

/// Invalid YAML, an unknown property, an import of an environment that does not exist and a
/// cyclic import are each refused with diagnostics, and leave the definition as it was.
pub async fn invalid_definitions_are_refused_with_diagnostics(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let app = create(&c, &org, "web", "app").await;
    let b = create(&c, &org, "web", "b").await;
    let good = "values:\n  x: 1\n";
    assert_eq!(set(&c, &app, good).await, 2);

    diagnostics(&put(&c, &app, "values: [unclosed\n  x: {\n").await);
    let diags = diagnostics(&put(&c, &app, "values:\n  a: ${nope}\n").await);
    assert!(
        diags.iter().any(|d| d["range"]["environment"] == "web/app"
            && d["range"]["begin"]["line"] == 2
            && mentions(std::slice::from_ref(d), "nope")),
        "the unknown property is placed at line 2 of web/app: {diags:?}"
    );
    let diags = diagnostics(&put(&c, &app, "imports:\n  - web/missing\nvalues:\n  x: 1\n").await);
    assert!(mentions(&diags, "web/missing"), "the missing import is named: {diags:?}");
    assert_eq!(set(&c, &b, "imports:\n  - web/app\nvalues:\n  y: 1\n").await, 2);
    let diags = diagnostics(&put(&c, &app, "imports:\n  - web/b\nvalues:\n  x: 2\n").await);
    assert!(mentions(&diags, "cycl"), "the cycle is reported: {diags:?}");

    assert_eq!(read(&c, &app).await, (good.to_string(), 2), "nothing refused was stored");
    assert_eq!(numbers(&revisions(&c, &app, "before=0&count=500").await), [2, 1]);
    srv.stop().await;
}

/// A secret's plaintext is never stored or read back: the definition keeps a ciphertext, and
/// only `decrypt` shows the plaintext. The stored text can be submitted again; a ciphertext
/// copied into another environment is refused.
pub async fn secrets_are_encrypted_at_rest(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = create(&c, &srv.user, "web", "db").await;
    assert_eq!(set(&c, &path, WITH_SECRET).await, 2);
    let (stored, rev) = read(&c, &path).await;
    assert_eq!(rev, 2);
    assert!(!stored.contains("hunter2"), "the plaintext is stored: {stored}");
    assert!(stored.contains("ciphertext") && stored.contains("user: admin"), "{stored}");
    let (plain, rev) = read(&c, &format!("{path}/decrypt")).await;
    assert_eq!(rev, 2);
    assert_plain(&plain, "hunter2");
    assert!(plain.contains("user: admin"), "{plain}");

    assert_eq!(set(&c, &path, &stored).await, 3, "the stored text is a valid definition");
    let (again, _) = read(&c, &path).await;
    assert!(!again.contains("hunter2"), "{again}");
    assert_eq!(read(&c, &format!("{path}/decrypt")).await, (plain.clone(), 3));

    let other = create(&c, &srv.user, "web", "other").await;
    let mine = "values:\n  x: 1\n";
    assert_eq!(set(&c, &other, mine).await, 2);
    diagnostics(&put(&c, &other, &stored).await);
    assert_eq!(read(&c, &other).await, (mine.to_string(), 2), "the copy was not stored");
    srv.stop().await;
}

/// Older revisions are read by number, `latest` or a tag, as stored or decrypted.
pub async fn versions_serve_older_revisions(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = create(&c, &srv.user, "web", "app").await;
    let two = "values:\n  n: 2\n";
    let three = "values:\n  n: 3\n  pw:\n    fn::secret: s3cr3t\n";
    assert_eq!(set(&c, &path, two).await, 2);
    assert_eq!(set(&c, &path, three).await, 3);

    assert_eq!(read(&c, &format!("{path}/versions/1")).await, (String::new(), 1));
    assert_eq!(read(&c, &format!("{path}/versions/2")).await, (two.to_string(), 2));
    assert_eq!(read(&c, &format!("{path}/versions/2/decrypt")).await, (two.to_string(), 2));
    let (latest, n) = read(&c, &format!("{path}/versions/latest")).await;
    assert_eq!(n, 3);
    assert!(latest.contains("ciphertext") && !latest.contains("s3cr3t"), "{latest}");
    let (plain, n) = read(&c, &format!("{path}/versions/3/decrypt")).await;
    assert_eq!(n, 3);
    assert_plain(&plain, "s3cr3t");
    assert_eq!(read(&c, &format!("{path}/versions/latest/decrypt")).await, (plain, 3));
    c.get(&format!("{path}/versions/9")).await.error_message(404);
    srv.stop().await;
}

/// `yaml/check` evaluates an anonymous definition: exprs, wrapped properties (nested too),
/// secrets redacted unless asked for; errors are diagnostics; nothing is stored.
pub async fn yaml_check_evaluates_without_storing(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let def = "values:\n  app:\n    name: web\n    port: 80\n  url: http://${app.name}:${app.port}\n  pw:\n    fn::secret: hunter2\n";
    let url = format!("{ROOT}/{org}/yaml/check");
    let r = send_yaml(&c, Method::POST, &format!("{url}?showSecrets=false"), def).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let v = r.json();
    let properties = v["properties"].to_string();
    assert!(!properties.contains("hunter2"), "a redacted check shows the secret: {properties}");
    assert!(v["exprs"]["app"].is_object() && v["exprs"]["pw"].is_object(), "exprs: {v}");
    assert!(v["executionContext"].is_object(), "executionContext: {v}");
    assert_eq!(prop(&v, "app.name"), "web");
    assert_eq!(prop(&v, "app.port"), 80);
    assert_eq!(prop(&v, "url"), "http://web:80");
    assert!(v["properties"]["app"]["trace"].is_object(), "trace: {v}");
    assert_eq!((&v["properties"]["pw"]["secret"], prop(&v, "pw")), (&json!(true), Value::Null));

    let r = send_yaml(&c, Method::POST, &format!("{url}?showSecrets=true"), def).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let v = r.json();
    assert_eq!(
        (&v["properties"]["pw"]["secret"], prop(&v, "pw")),
        (&json!(true), json!("hunter2"))
    );

    let r =
        send_yaml(&c, Method::POST, &format!("{url}?showSecrets=false"), "values:\n  a: ${nope}\n")
            .await;
    diagnostics(&r);
    assert!(listed(&c, &format!("{ROOT}/{org}")).await.is_empty(), "a check stores nothing");
    srv.stop().await;
}

/// An open session shows the evaluated environment with secrets in the clear, whole or one
/// property at a time, only under its own environment and until its duration runs out.
pub async fn open_sessions_show_secrets_until_they_expire(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let path = create(&c, &org, "web", "app").await;
    set(&c, &path, "values:\n  app:\n    name: web\n  pw:\n    fn::secret: hunter2\n").await;
    let id = open(&c, &path, "2h0m0s").await;
    let short = open(&c, &path, "1m0s").await;

    let r = c.get(&format!("{path}/open/{id}")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let v = r.json();
    assert_eq!(
        (prop(&v, "pw"), &v["properties"]["pw"]["secret"]),
        (json!("hunter2"), &json!(true))
    );
    assert_eq!(prop(&v, "app.name"), "web");
    let r = c.get(&format!("{path}/open/{id}?property=app.name")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(r.json()["value"], "web", "{}", show(&r));

    c.get(&format!("{path}/open/0123456789abcdef0123456789abcdef")).await.error_message(404);
    let other = create(&c, &org, "web", "other").await;
    c.get(&format!("{other}/open/{id}")).await.error_message(404);
    c.get(&format!("{ROOT}/{org}/yaml/open/{id}")).await.error_message(404);
    let r = c.send(Method::POST, &format!("{path}/open?duration=nonsense"), None, false).await;
    r.error_message(400);

    srv.app.clock.advance(120);
    c.get(&format!("{path}/open/{short}")).await.error_message(404);
    let r = c.get(&format!("{path}/open/{id}")).await;
    assert_eq!(r.status, 200, "a two-hour session outlives two minutes: {}", show(&r));
    // The retention job removes the expired session's sealed values, and only those.
    let sealed = |srv: &TestServer| {
        let app = srv.app.clone();
        async move {
            let prefix = stackhouse::service::environments::sessions::BLOB_PREFIX;
            app.ports.blobs.list(prefix, None).await.expect("list sessions").keys.len()
        }
    };
    let before = sealed(&srv).await;
    let now = srv.app.clock.now();
    let report = stackhouse::service::retention::run(&srv.app, now).await.expect("retention");
    assert_eq!(report.sessions_deleted, 1, "the one-minute session: {report:?}");
    assert_eq!(sealed(&srv).await, before - 1);
    assert_eq!(c.get(&format!("{path}/open/{id}")).await.status, 200);
    srv.app.clock.advance(2 * 3600);
    c.get(&format!("{path}/open/{id}")).await.error_message(404);
    let now = srv.app.clock.now();
    let report = stackhouse::service::retention::run(&srv.app, now).await.expect("retention");
    assert!(report.sessions_deleted >= 1, "{report:?}");
    assert_eq!(sealed(&srv).await, 0, "every session has expired");
    srv.stop().await;
}

/// An anonymous definition (JSON is YAML) opens with its imports merged: later imports and its
/// own values win, objects merge deeply; references keep the value's type, interpolation makes
/// strings; `environmentVariables` and `pulumiConfig` are properties like any other.
pub async fn yaml_open_merges_imports(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let base = create(&c, &org, "proj", "base").await;
    let overlay = create(&c, &org, "proj", "overlay").await;
    let base_def = "values:\n  app:\n    name: web\n    port: 80\n  region: us-east-1\n  greeting: hello\n  token:\n    fn::secret: hunter2\n";
    set(&c, &base, base_def).await;
    set(&c, &overlay, "values:\n  app:\n    port: 8080\n    tier: front\n  region: eu-west-1\n")
        .await;

    let v = yaml_open(&c, &org, &json!({"imports": ["proj/base"]})).await;
    assert_eq!((prop(&v, "app.port"), prop(&v, "region")), (json!(80), json!("us-east-1")));

    let body = json!({
        "imports": ["proj/base", "proj/overlay"],
        "values": {
            "greeting": "hi",
            "port": "${app.port}",
            "url": "http://${app.name}:${app.port}",
            "environmentVariables": {"REGION": "${region}"},
            "pulumiConfig": {"app:name": "${app.name}"},
        },
    });
    let v = yaml_open(&c, &org, &body).await;
    assert_eq!(prop(&v, "app.name"), "web", "objects merge deeply: {v}");
    assert_eq!(prop(&v, "app.port"), 8080, "the later import wins");
    assert_eq!(prop(&v, "app.tier"), "front");
    assert_eq!(prop(&v, "region"), "eu-west-1");
    assert_eq!(prop(&v, "greeting"), "hi", "the definition's own values win");
    assert_eq!(prop(&v, "port"), 8080, "a reference keeps the number");
    assert_eq!(prop(&v, "url"), "http://web:8080");
    assert_eq!(prop(&v, "environmentVariables.REGION"), "eu-west-1");
    assert_eq!(prop(&v, "pulumiConfig.app:name"), "web");
    assert_eq!(
        (prop(&v, "token"), &v["properties"]["token"]["secret"]),
        (json!("hunter2"), &json!(true))
    );

    let v = yaml_open(&c, &org, &json!({"imports": ["proj/overlay", "proj/base"]})).await;
    assert_eq!((prop(&v, "app.port"), prop(&v, "region")), (json!(80), json!("us-east-1")));
    assert_eq!(prop(&v, "app.tier"), "front", "objects merge deeply either way: {v}");
    srv.stop().await;
}

/// Revisions list newest first, with their creator and tags (`latest` on the newest), and
/// page with an exclusive `before` and a `count`.
pub async fn revisions_list_newest_first(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = create(&c, &srv.user, "web", "app").await;
    for n in 2..=4 {
        assert_eq!(set(&c, &path, &format!("values:\n  n: {n}\n")).await, n);
    }
    let revs = revisions(&c, &path, "before=0&count=500").await;
    assert_eq!(numbers(&revs), [4, 3, 2, 1]);
    for (i, r) in revs.iter().enumerate() {
        assert_eq!(r["creatorLogin"], srv.user.as_str(), "{r}");
        assert!(
            r["creatorName"].is_string() && r["created"].as_str().is_some_and(|s| !s.is_empty()),
            "{r}"
        );
        let latest = r["tags"].as_array().expect("tags").contains(&json!("latest"));
        assert_eq!(latest, i == 0, "only the newest is latest: {r}");
        assert!(r.get("retracted").is_none_or(Value::is_null), "{r}");
    }
    assert_eq!(numbers(&revisions(&c, &path, "before=3&count=500").await), [2, 1]);
    assert_eq!(numbers(&revisions(&c, &path, "before=0&count=2").await), [4, 3]);
    srv.stop().await;
}

/// Revision tags name a revision: create, read, serve the definition, move, list (with
/// `latest`), delete; `latest` cannot be created.
pub async fn revision_tags_name_revisions(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = create(&c, &srv.user, "web", "app").await;
    let (two, three) = ("values:\n  n: 2\n", "values:\n  n: 3\n");
    set(&c, &path, two).await;
    set(&c, &path, three).await;
    let tags = format!("{path}/versions/tags");

    let r = c.post(&tags, &json!({"name": "stable", "revision": 2})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!((&r.json()["name"], &r.json()["revision"]), (&json!("stable"), &json!(2)));
    let r = c.get(&format!("{tags}/stable")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let v = r.json();
    assert_eq!(
        (&v["name"], &v["revision"], &v["editorLogin"]),
        (&json!("stable"), &json!(2), &json!(srv.user))
    );
    for field in ["created", "modified", "editorName"] {
        assert!(v[field].is_string(), "no {field}: {v}");
    }
    assert_eq!(read(&c, &format!("{path}/versions/stable")).await, (two.to_string(), 2));
    let r = c.get(&format!("{tags}?after=&count=500")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let listed = r.json();
    assert_eq!(names(&listed), ["latest", "stable"]);
    assert_eq!(listed["tags"][0]["revision"], 3, "{listed}");
    let revs = revisions(&c, &path, "before=0&count=500").await;
    assert!(revs[1]["tags"].as_array().expect("tags").contains(&json!("stable")), "{revs:?}");

    let r = c.patch(&format!("{tags}/stable"), &json!({"revision": 3})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(c.get(&format!("{tags}/stable")).await.json()["revision"], 3);
    assert_eq!(read(&c, &format!("{path}/versions/stable")).await, (three.to_string(), 3));

    c.post(&tags, &json!({"name": "latest", "revision": 1})).await.error_message(400);
    let r = c.delete(&format!("{tags}/stable")).await;
    assert!(r.status.is_success(), "{}", show(&r));
    c.get(&format!("{tags}/stable")).await.error_message(404);
    assert_eq!(names(&c.get(&format!("{tags}?after=&count=500")).await.json()), ["latest"]);

    set(&c, &path, "values:\n  n: 4\n").await;
    let listed = c.get(&format!("{tags}?after=&count=500")).await.json();
    assert_eq!(listed["tags"][0]["revision"], 4, "latest follows the newest: {listed}");
    srv.stop().await;
}

/// The newest revision cannot be retracted; an older one reads as its replacement (the
/// revision before it) and is listed as retracted.
pub async fn retracted_revisions_read_as_their_replacement(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = create(&c, &srv.user, "web", "app").await;
    let defs = ["values:\n  n: a\n", "values:\n  n: b\n", "values:\n  n: c\n"];
    for d in defs {
        set(&c, &path, d).await;
    }
    c.post(&format!("{path}/versions/4/retract"), &json!({})).await.error_message(400);
    let r = c.post(&format!("{path}/versions/3/retract"), &json!({})).await;
    assert!(r.status.is_success(), "{}", show(&r));

    assert_eq!(read(&c, &format!("{path}/versions/3")).await.0, defs[0]);
    assert_eq!(read(&c, &path).await, (defs[2].to_string(), 4));
    let revs = revisions(&c, &path, "before=0&count=500").await;
    assert_eq!(numbers(&revs), [4, 3, 2, 1]);
    assert_eq!(revs[1]["retracted"]["replacement"], 2, "{revs:?}");
    for r in [&revs[0], &revs[2]] {
        assert!(r.get("retracted").is_none_or(Value::is_null), "{r}");
    }
    srv.stop().await;
}

/// Environment tags: create, list, change the value, delete.
pub async fn environment_tags_crud(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = create(&c, &srv.user, "web", "app").await;
    let r = c.post(&format!("{path}/tags"), &json!({"name": "team", "value": "a"})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!((&r.json()["name"], &r.json()["value"]), (&json!("team"), &json!("a")));
    let v = c.get(&format!("{path}/tags")).await.json();
    assert_eq!((&v["tags"]["team"]["value"], &v["nextToken"]), (&json!("a"), &json!("0")), "{v}");

    let change = json!({"currentTag": {"value": "a"}, "newTag": {"name": "", "value": "b"}});
    let r = c.patch(&format!("{path}/tags/team"), &change).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let v = c.get(&format!("{path}/tags")).await.json();
    let keys: Vec<&String> = v["tags"].as_object().expect("tags").keys().collect();
    assert_eq!(
        (keys, &v["tags"]["team"]["value"]),
        (vec![&"team".to_string()], &json!("b")),
        "{v}"
    );

    let r = c.delete(&format!("{path}/tags/team")).await;
    assert!(r.status.is_success(), "{}", show(&r));
    let v = c.get(&format!("{path}/tags")).await.json();
    assert_eq!(v["tags"], json!({}), "{v}");
    srv.stop().await;
}

/// A protected environment cannot be deleted; unprotected, it is deleted and reads 404, and
/// the retention job then removes its revisions and their blobs, once.
pub async fn deletion_protection_blocks_delete(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let path = create(&c, &org, "web", "app").await;
    set(&c, &path, "values:\n  x: 1\n").await;
    let r = c.patch(&format!("{path}/settings"), &json!({"deletionProtected": true})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let message = c.delete(&path).await.error_message(409);
    assert!(message.contains("protect"), "{message}");
    assert_eq!(read(&c, &path).await.1, 2, "a protected environment stays");

    let r = c.patch(&format!("{path}/settings"), &json!({"deletionProtected": false})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let at = stackhouse::service::environments::EnvRef::parse(&org, "web", "app").expect("name");
    let meta = srv.app.ports.meta.as_ref();
    let id = stackhouse::service::environments::get(meta, &at).await.expect("env").id;
    assert_eq!(c.delete(&path).await.status, 204);
    c.get(&path).await.error_message(404);
    assert!(listed(&c, &format!("{ROOT}/{org}")).await.is_empty());

    // The retention job removes what it left: revisions, their blobs, tags.
    let left = |srv: &TestServer| {
        let (app, id) = (srv.app.clone(), id.clone());
        async move {
            let blobs = app.ports.blobs.list(&format!("esc/{id}/"), None).await.expect("list");
            let q = stackhouse::ports::Query::prefix(format!("ENV#{id}"), "", 100);
            let items = app.ports.meta.query(q).await.expect("query").items;
            (blobs.keys.len(), items.len())
        }
    };
    let (blobs, items) = left(&srv).await;
    assert!(blobs >= 2 && items >= 2, "two revisions were there: {blobs} blobs, {items} items");
    let now = srv.app.clock.now();
    let report = stackhouse::service::retention::run(&srv.app, now).await.expect("retention");
    assert_eq!(report.environments_purged, 1, "{report:?}");
    assert_eq!(left(&srv).await, (0, 0), "nothing of the deleted environment stays");
    let report = stackhouse::service::retention::run(&srv.app, now).await.expect("retention");
    assert_eq!(report.environments_purged, 0, "once: {report:?}");
    srv.stop().await;
}

/// A clone is a new environment in the same project with the same values: its secrets are
/// encrypted again (another ciphertext) and decrypt to the same plaintext.
pub async fn clones_reencrypt_secrets(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let path = create(&c, &org, "web", "app").await;
    set(&c, &path, WITH_SECRET).await;
    let r = c.post(&format!("{path}/clone"), &json!({"name": "copy"})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let copy = at(&org, "web", "copy");
    assert_eq!(
        listed(&c, &format!("{ROOT}/{org}")).await,
        [format!("{org}/web/app"), format!("{org}/web/copy")]
    );

    let (source_text, _) = read(&c, &path).await;
    let (copy_text, _) = read(&c, &copy).await;
    assert!(!copy_text.contains("hunter2"), "{copy_text}");
    let (a, b) = (ciphertexts(&source_text), ciphertexts(&copy_text));
    assert!(a.len() == 1 && b.len() == 1 && !b[0].is_empty(), "{source_text} / {copy_text}");
    assert_ne!(a, b, "the clone's secret is encrypted again");
    let (plain, _) = read(&c, &format!("{path}/decrypt")).await;
    assert_plain(&plain, "hunter2");
    assert_eq!(read(&c, &format!("{copy}/decrypt")).await.0, plain, "the same plaintext");
    let v = c.get(&format!("{copy}/open/{}", open(&c, &copy, "2h0m0s").await)).await.json();
    assert_eq!(prop(&v, "pw"), "hunter2");
    srv.stop().await;
}

/// Someone outside the organization reaches none of its environments (404 or 403, and no
/// secret in any answer), changes nothing, and sees only their own organization's.
pub async fn non_members_cannot_reach_environments(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let path = create(&c, &org, "web", "app").await;
    set(&c, &path, WITH_SECRET).await;
    let nora = srv.other_user("nora-envs").await;
    let small = "values:\n  x: 1\n";
    let list = format!("{ROOT}/{org}");
    let calls: Vec<(Method, String, Option<&str>)> = vec![
        (Method::GET, list.clone(), None),
        (Method::POST, list.clone(), Some(r#"{"project":"web","name":"sneaky"}"#)),
        (Method::GET, path.clone(), None),
        (Method::GET, format!("{path}/decrypt"), None),
        (Method::PATCH, path.clone(), Some(small)),
        (Method::POST, format!("{path}/open?duration=2h0m0s"), None),
        (Method::GET, format!("{path}/versions?before=0&count=500"), None),
        (Method::GET, format!("{path}/versions/2/decrypt"), None),
        (Method::POST, format!("{path}/clone"), Some(r#"{"name":"mine"}"#)),
        (
            Method::POST,
            format!("{list}/yaml/check?showSecrets=true"),
            Some("imports:\n  - web/app\n"),
        ),
        (
            Method::POST,
            format!("{list}/yaml/open?duration=2h0m0s"),
            Some("imports:\n  - web/app\n"),
        ),
        (Method::PATCH, format!("{path}/settings"), Some(r#"{"deletionProtected":true}"#)),
        (Method::DELETE, path.clone(), None),
    ];
    for (method, url, body) in calls {
        let r = nora.send(method.clone(), &url, body.map(|b| b.as_bytes().to_vec()), false).await;
        assert!(matches!(r.status.as_u16(), 403 | 404), "{method} {url}: {}", show(&r));
        assert!(!text(&r).contains("hunter2"), "{method} {url}: {}", show(&r));
    }
    let (stored, rev) = read(&c, &path).await;
    assert_eq!(rev, 2, "nothing changed: {stored}");
    assert_eq!(listed(&c, &list).await, [format!("{org}/web/app")]);

    // A session of the organization is not readable under another's path.
    let r = c
        .post(&format!("{list}/yaml/open?duration=2h0m0s"), &json!({"imports": ["web/app"]}))
        .await;
    let id = r.json()["id"].as_str().expect("id").to_string();
    nora.get(&format!("{ROOT}/nora-envs/yaml/open/{id}")).await.error_message(404);

    create(&nora, "nora-envs", "web", "theirs").await;
    assert_eq!(listed(&c, &list).await, [format!("{org}/web/app")]);
    assert_eq!(listed(&nora, ROOT).await, ["nora-envs/web/theirs"]);
    assert_eq!(listed(&c, ROOT).await, [format!("{org}/web/app")]);
    srv.stop().await;
}
