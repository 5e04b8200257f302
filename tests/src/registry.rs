//! The private registry over real HTTP, as `pulumi template publish`, `pulumi template ls`,
//! `pulumi new <publisher>/<name>@<version>`, `pulumi package publish` and `pulumi package
//! remove` call it: publish through a presigned upload,
//! archives checked and stored once by content, the newest version listed, downloads without
//! credentials, and what another organization can reach. The `registry_tests!` macro runs every
//! check against one backend.

use serde_json::{json, Value};

use crate::server::{Client, Reply, Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! registry_tests {
    ($target:expr) => {
        $crate::registry_tests!(@each $target;
            templates_publish_list_get_and_download,
            archives_without_a_project_are_refused,
            other_organizations_cannot_reach_templates,
            packages_publish_get_list_and_remove,
            policy_packs_publish_through_the_registry
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::registry::$name(make(stringify!($name))).await;
            }
        )*
    };
}

fn show(r: &Reply) -> String {
    format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
}

/// A tar.gz of `files` (path, text), as `pulumi template publish` makes one: no prefix directory.
pub fn template_archive(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, text.as_bytes()).expect("tar entry");
    }
    crate::server::gzip(&builder.into_inner().expect("tar"))
}

fn project(description: &str) -> Vec<u8> {
    let yaml = format!("name: web\nruntime: yaml\ndescription: {description}\n");
    template_archive(&[("Pulumi.yaml", &yaml), ("README.md", "# web\n")])
}

fn versions(org: &str, name: &str) -> String {
    format!("/api/registry/templates/private/{org}/{name}/versions")
}

/// Publishes `name@version` with `archive`: start, upload, complete; returns complete's reply.
async fn publish(c: &Client, org: &str, name: &str, version: &str, archive: &[u8]) -> Reply {
    let r = c.post(&versions(org, name), &json!({"version": version})).await;
    assert_eq!(r.status, 200, "start {name}@{version}: {}", show(&r));
    let started = r.json();
    let url = started["uploadURLs"]["archive"].as_str().expect("an upload URL").to_string();
    let put = reqwest::Client::new()
        .put(&url)
        .header("Content-Type", "application/gzip")
        .body(archive.to_vec())
        .send()
        .await
        .expect("upload");
    // The CLI insists on exactly 200.
    assert_eq!(put.status().as_u16(), 200, "upload to {url}");
    let done = format!("{}/{version}/complete", versions(org, name));
    c.post(&done, &json!({"operationID": started["operationID"]})).await
}

async fn list(c: &Client, query: &str) -> Value {
    let r = c.get(&format!("/api/registry/templates?limit=499{query}")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    r.json()
}

pub async fn templates_publish_list_get_and_download(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let first = project("A web app");
    assert_eq!(publish(&c, &org, "web", "1.0.0", &first).await.status, 200);
    let r = publish(&c, &org, "web", "1.1.0", &project("A better web app")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(publish(&c, &org, "api", "0.1.0", &first).await.status, 200);
    // Published once: the same version again is refused.
    let r = c.post(&versions(&org, "web"), &json!({"version": "1.0.0"})).await;
    assert_eq!(r.status, 409, "{}", show(&r));

    let all = list(&c, "").await;
    let names: Vec<(&str, &str)> = all["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|t| {
            (t["name"].as_str().unwrap_or(""), t["metadata"]["version"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(names, [("api", "0.1.0"), ("web", "1.1.0")], "the newest of each: {all}");
    let web = &all["templates"][1];
    assert_eq!(web["publisher"], org.as_str());
    assert_eq!(web["source"], "private");
    assert_eq!(web["language"], "yaml");
    assert_eq!(web["visibility"], "private");
    assert_eq!(web["description"], "A better web app");
    assert!(web["updatedAt"].as_str().is_some_and(|t| t.contains('T')), "{web}");
    let searched = list(&c, "&search=BETTER").await;
    assert_eq!(searched["templates"].as_array().map(Vec::len), Some(1), "{searched}");
    assert_eq!(list(&c, "&name=api").await["templates"][0]["name"], "api");
    assert_eq!(list(&c, "&orgLogin=nobody").await["templates"], json!([]));

    // A version, or the newest, with a URL that serves the archive as uploaded.
    let got = c.get(&format!("{}/1.0.0", versions(&org, "web"))).await;
    assert_eq!(got.status, 200, "{}", show(&got));
    let url = got.json()["downloadURL"].as_str().expect("downloadURL").to_string();
    let bytes = reqwest::get(&url).await.expect("download").bytes().await.expect("body");
    assert_eq!(bytes.as_ref(), first.as_slice());
    let latest = c.get(&format!("{}/latest", versions(&org, "web"))).await.json();
    assert_eq!(latest["metadata"]["version"], "1.1.0");
    assert_eq!(c.get(&format!("{}/9.9.9", versions(&org, "web"))).await.status, 404);
    assert_eq!(c.get("/api/registry/templates/pulumi/x/web/versions/1.0.0").await.status, 404);

    // Every version, the newest first; the readme, as a URL and as markdown content.
    let all = c.get(&versions(&org, "web")).await;
    assert_eq!(all.status, 200, "{}", show(&all));
    let body = all.json();
    let listed: Vec<&str> = body["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .filter_map(|t| t["version"].as_str())
        .collect();
    assert_eq!(listed, ["1.1.0", "1.0.0"], "{}", show(&all));
    let readme_url = latest["readmeURL"].as_str().expect("readmeURL").to_string();
    let readme = reqwest::get(&readme_url).await.expect("download").text().await.expect("body");
    assert_eq!(readme, "# web\n");
    let r = c.get(&format!("{}/1.0.0/readme?lang=go", versions(&org, "web"))).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(r.json()["content"], json!([{"kind": "markdown", "markdown": "# web\n"}]));
    let bare = template_archive(&[("Pulumi.yaml", "name: bare\nruntime: yaml\n")]);
    assert_eq!(publish(&c, &org, "bare", "1.0.0", &bare).await.status, 200);
    let r = c.get(&format!("{}/1.0.0/readme", versions(&org, "bare"))).await;
    assert_eq!(r.status, 404, "no README.md: {}", show(&r));
    assert_eq!(c.get(&format!("{}/latest", versions(&org, "bare"))).await.json()["readmeURL"], "");
    assert_eq!(c.delete(&format!("{}/1.0.0", versions(&org, "bare"))).await.status, 204);
    assert_eq!(c.get(&versions(&org, "bare")).await.status, 404, "no version left");

    // Two versions with the same archive (web@1.0.0, api@0.1.0) share one stored blob, and
    // every version's identical README.md is one more; bare@1.0.0's archive, referenced by
    // nothing now, stays until the collector's grace period has passed.
    let stored = srv
        .app
        .ports
        .blobs
        .list(stackhouse::service::artifacts::STORED_PREFIX, None)
        .await
        .expect("list");
    assert_eq!(stored.keys.len(), 4, "{:?}", stored.keys);
    assert_eq!(c.delete(&format!("{}/1.0.0", versions(&org, "web"))).await.status, 204);
    assert_eq!(c.get(&format!("{}/1.0.0", versions(&org, "web"))).await.status, 404);
    let usage = stackhouse::service::artifacts::usage(srv.app.ports.meta.as_ref(), &org).await;
    assert_eq!(usage.expect("usage").0, 2);
    srv.stop().await;
}

pub async fn archives_without_a_project_are_refused(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let nested = template_archive(&[("web/Pulumi.yaml", "name: web\nruntime: yaml\n")]);
    let r = publish(&c, &org, "web", "1.0.0", &nested).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert!(r.error_message(400).contains("no Pulumi.yaml at its root"), "{}", show(&r));
    let r = publish(&c, &org, "web", "1.0.1", b"not an archive").await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert_eq!(list(&c, "").await["templates"], json!([]));
    let stored = srv
        .app
        .ports
        .blobs
        .list(stackhouse::service::artifacts::STORED_PREFIX, None)
        .await
        .expect("list");
    assert!(stored.keys.is_empty(), "refused archives are not kept: {:?}", stored.keys);
    // A wrong operation id completes nothing.
    let started = c.post(&versions(&org, "web"), &json!({"version": "2.0.0"})).await.json();
    let done = format!("{}/2.0.0/complete", versions(&org, "web"));
    let r = c.post(&done, &json!({"operationID": "someone-else"})).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    assert!(started["operationID"].is_string());
    let r = c.post(&versions(&org, "web"), &json!({"version": "1.0"})).await;
    assert_eq!(r.status, 400, "not a semantic version: {}", show(&r));
    srv.stop().await;
}

pub async fn other_organizations_cannot_reach_templates(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    assert_eq!(publish(&c, &org, "web", "1.0.0", &project("mine")).await.status, 200);
    let eve = srv.other_user("eve-templates").await;
    assert_eq!(list(&eve, "").await["templates"], json!([]), "not listed for others");
    let r = eve.get(&format!("{}/1.0.0", versions(&org, "web"))).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{}", show(&r));
    let r = eve.post(&versions(&org, "evil"), &json!({"version": "1.0.0"})).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{}", show(&r));
    srv.stop().await;
}

/// Publishes a package version the way `pulumi package publish` does: start, PUT the schema
/// and the readme (no installation notes), complete; returns complete's reply.
async fn publish_package(c: &Client, org: &str, name: &str, schema: &Value) -> Reply {
    let version = schema["version"].as_str().unwrap_or("1.0.0");
    let start = format!("/api/registry/packages/private/{org}/{name}/versions");
    let r = c.post(&start, &json!({"version": version})).await;
    assert_eq!(r.status, 200, "start {name}@{version}: {}", show(&r));
    let started = r.json();
    let http = reqwest::Client::new();
    for (part, body) in [("schema", schema.to_string()), ("index", format!("# {name}\n"))] {
        let url = started["uploadURLs"][part].as_str().expect("an upload URL");
        let put = http.put(url).body(body).send().await.expect("upload");
        assert!(put.status().is_success(), "upload {part}: {}", put.status());
    }
    let done = format!("{start}/{version}/complete");
    c.post(&done, &json!({"operationID": started["operationID"]})).await
}

pub async fn packages_publish_get_list_and_remove(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let schema = json!({"name": "widgets", "version": "1.0.0", "displayName": "Widgets",
                        "description": "Widgets for all", "resources": {}});
    let r = publish_package(&c, &org, "widgets", &schema).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let newer = json!({"name": "widgets", "version": "1.2.0", "description": "Better widgets"});
    assert_eq!(publish_package(&c, &org, "widgets", &newer).await.status, 200);
    // A schema that names another package is refused, and nothing is listed for it.
    let wrong = json!({"name": "gadgets", "version": "1.0.0"});
    let r = publish_package(&c, &org, "not-gadgets", &wrong).await;
    assert_eq!(r.status, 400, "{}", show(&r));
    let again = format!("/api/registry/packages/private/{org}/widgets/versions");
    let r = c.post(&again, &json!({"version": "1.0.0"})).await;
    assert_eq!(r.status, 409, "published once: {}", show(&r));

    let listed = c.get("/api/registry/packages?limit=499").await.json();
    let names: Vec<(&str, &str)> = listed["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or(""), p["version"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(names, [("widgets", "1.2.0")], "the newest of each: {listed}");
    let got = c.get(&format!("{again}/1.0.0")).await;
    assert_eq!(got.status, 200, "{}", show(&got));
    let got = got.json();
    assert_eq!(
        (got["title"].as_str(), got["visibility"].as_str()),
        (Some("Widgets"), Some("private"))
    );
    assert_eq!(got["packageStatus"], "ga");
    let fetch = |url: String| async move {
        reqwest::get(&url).await.expect("download").bytes().await.expect("body").to_vec()
    };
    let downloaded: Value =
        serde_json::from_slice(&fetch(got["schemaURL"].as_str().expect("schemaURL").into()).await)
            .expect("the schema as uploaded");
    assert_eq!(downloaded, schema);
    let readme = fetch(got["readmeURL"].as_str().expect("readmeURL").into()).await;
    assert_eq!(readme, b"# widgets\n");
    assert_eq!(c.get(&format!("{again}/latest")).await.json()["version"], "1.2.0");
    // Both versions share the readme's blob: 3 archives for 2 schemas and 1 readme.
    let stored = srv
        .app
        .ports
        .blobs
        .list(stackhouse::service::artifacts::STORED_PREFIX, None)
        .await
        .expect("list");
    assert_eq!(stored.keys.len(), 3, "{:?}", stored.keys);
    let eve = srv.other_user("eve-packages").await;
    assert_eq!(eve.get("/api/registry/packages").await.json()["packages"], json!([]));
    assert!(matches!(eve.get(&format!("{again}/1.0.0")).await.status.as_u16(), 403 | 404));
    assert_eq!(c.delete(&format!("{again}/1.0.0")).await.status, 204);
    assert_eq!(c.get(&format!("{again}/1.0.0")).await.status, 404);
    srv.stop().await;
}

/// A policy pack published through the registry's routes (`POST
/// /api/registry/policypacks/private/{org}/{name}/versions`, then `…/{tag}/complete`) is the
/// pack `/api/orgs/{org}/policypacks` serves; `DELETE …/{name}` removes every version.
pub async fn policy_packs_publish_through_the_registry(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    let start = format!("/api/registry/policypacks/private/{org}/guard/versions");
    let policies = json!([{"name": "no-padding", "enforcementLevel": "advisory", "message": ""}]);
    let r = c
        .post(&start, &json!({"name": "other", "versionTag": "1.0.0", "policies": policies}))
        .await;
    assert_eq!(r.status, 400, "the body names another pack: {}", show(&r));
    let r = c.post(&start, &json!([1])).await;
    assert_eq!(r.status, 400, "not an object: {}", show(&r));
    let listed = c.get(&format!("/api/orgs/{org}/policypacks")).await.json();
    assert_eq!(listed["policyPacks"], json!([]), "nothing was started: {listed}");

    for tag in ["1.0.0", "1.1.0"] {
        let r = c.post(&start, &json!({"versionTag": tag, "policies": policies})).await;
        assert_eq!(r.status, 200, "{}", show(&r));
        let url = r.json()["uploadURI"].as_str().expect("uploadURI").to_string();
        let archive = template_archive(&[("PulumiPolicy.yaml", "runtime: python\n")]);
        let put = reqwest::Client::new().put(&url).body(archive).send().await.expect("upload");
        assert!(put.status().is_success(), "upload: {}", put.status());
        let r = c.post(&format!("{start}/{tag}/complete"), &json!({})).await;
        assert_eq!(r.status, 204, "{}", show(&r));
    }
    let listed = c.get(&format!("/api/orgs/{org}/policypacks")).await.json();
    assert_eq!(listed["policyPacks"][0]["name"], "guard", "{listed}");
    assert_eq!(listed["policyPacks"][0]["versionTags"], json!(["1.0.0", "1.1.0"]), "{listed}");
    let r = c.get(&format!("{start}/latest")).await;
    assert_eq!(r.json()["policyPack"]["version"], "1.1.0", "{}", show(&r));

    let eve = srv.other_user("eve-packs").await;
    let r = eve.delete(&format!("/api/registry/policypacks/private/{org}/guard")).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{}", show(&r));
    let r = c.delete(&format!("/api/registry/policypacks/private/{org}/guard")).await;
    assert_eq!(r.status, 204, "{}", show(&r));
    let listed = c.get(&format!("/api/orgs/{org}/policypacks")).await.json();
    assert_eq!(listed["policyPacks"], json!([]), "every version is gone: {listed}");
    assert_eq!(c.get(&start).await.status, 404);
    srv.stop().await;
}
