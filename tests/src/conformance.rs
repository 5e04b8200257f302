//! HTTP conformance checks: each drives a fresh emulator over real HTTP exactly as the Pulumi CLI
//! does (docs/PROTOCOL-NOTES.md, Identity and Stacks) and asserts what a CLI user would notice. The
//! `conformance_tests!` macro runs every check against one backend.

use futures::future::join_all;
use futures::StreamExt;
use serde_json::{json, Value};
use stackhouse::app::Settings;
use stackhouse::ports::Value as Attr;

pub use crate::limits::*;
pub use crate::rename::*;
use crate::server::{Target, TestServer};
pub use crate::updates::*;

/// Expands to one `#[tokio::test]` per conformance check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! conformance_tests {
    ($target:expr) => {
        $crate::conformance_tests!(@each $target;
            user_profile_has_logins,
            default_org_and_capabilities,
            credentials_are_required_and_checked,
            stack_lifecycle,
            bad_names_are_refused_and_change_nothing,
            bad_bodies_are_refused_and_change_nothing,
            oversized_bodies_get_413,
            unknown_routes_and_methods,
            listing_filters_and_pages,
            other_organizations_are_off_limits,
            delete_refuses_stacks_with_resources_unless_forced,
            concurrent_creates_have_one_winner,
            gzip_requests_and_responses,
            up_with_full_checkpoints,
            leases_serialise_updates,
            lease_tokens_are_bound_to_their_update,
            concurrent_starts_have_one_winner,
            retries_are_idempotent,
            events_read_back_in_order,
            import_export_round_trips_fixtures,
            destroy_then_remove,
            delta_checkpoints_follow_the_vectors,
            journal_replay_matches_checkpoints,
            killed_journal_update_keeps_acknowledged_state,
            oversized_journal_batches_get_413,
            cli_sessions_in_every_persistence_mode,
            bad_journal_entries_do_not_wedge_the_stack,
            deep_states_are_refused_at_every_entry,
            unreadable_stored_state_does_not_brick_the_stack,
            slow_and_oversized_requests_are_cut_off,
            rename_moves_history_tags_and_secrets
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::conformance::$name(make(stringify!($name))).await;
            }
        )*
    };
}

const ORG_PROJECT: &str = "proj";

fn stacks_path(org: &str) -> String {
    format!("/api/stacks/{org}/{ORG_PROJECT}")
}

async fn create(server: &TestServer, name: &str, tags: Value) -> crate::server::Reply {
    server
        .client()
        .post(&stacks_path(&server.user), &json!({"stackName": name, "tags": tags}))
        .await
}

/// `GET /api/user` answers with non-empty logins, the user's organizations and the token name.
pub async fn user_profile_has_logins(target: Target) {
    let server = TestServer::start(target).await;
    let r = server.client().get("/api/user").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["githubLogin"], server.user.as_str());
    let orgs = v["organizations"].as_array().expect("organizations array");
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["githubLogin"], server.user.as_str());
    // Pulumi Cloud's `OrganizationSummaryWithRole`: the role is required.
    assert_eq!(orgs[0]["role"], "admin", "{v}");
    assert_eq!(v["hasMFA"], false, "{v}");
    // Personal tokens have no `tokenInfo` (the CLI shows "Token type: personal").
    assert!(v.get("tokenInfo").is_none(), "{v}");
    server.stop().await;
}

/// The default organization uses Go field names; capabilities parse.
pub async fn default_org_and_capabilities(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let r = c.get("/api/user/organizations/default").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"GitHubLogin": server.user, "Messages": []}));
    let r = c.get("/api/capabilities").await;
    assert_eq!(r.status, 200);
    let caps = r.json()["capabilities"].clone();
    let find =
        |name: &str| caps.as_array().unwrap().iter().find(|c| c["capability"] == name).cloned();
    assert!(find("batch-encrypt").is_some(), "{caps}");
    let schema = find("deployment-schema-version").expect("deployment-schema-version");
    assert_eq!(schema["version"], 1, "the CLI only parses version 1 of this capability");
    assert_eq!(schema["configuration"]["version"], 4);
    let delta = find("delta-checkpoint-uploads-v2").expect("delta checkpoints");
    assert_eq!(delta["version"], 2, "the CLI ignores any other version of this capability");
    assert!(delta["configuration"]["checkpointCutoffSizeBytes"].as_i64().unwrap() > 0);
    server.stop().await;
}

/// No token, a wrong token or a wrong scheme: 401 with a Pulumi error body.
pub async fn credentials_are_required_and_checked(target: Target) {
    let server = TestServer::start(target).await;
    let r = server.client_with(None).get("/api/user").await;
    assert!(r.error_message(401).starts_with("Unauthorized: "));
    let r = server.client_with(Some("pul-not-a-real-token")).get("/api/user/stacks").await;
    r.error_message(401);
    let raw = reqwest::Client::new()
        .get(format!("{}/api/user", server.base))
        .header("Authorization", format!("Bearer {}", server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    // The right token under the lease scheme is not a user credential.
    let raw = reqwest::Client::new()
        .get(format!("{}/api/user", server.base))
        .header("Authorization", format!("update-token {}", server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    server.stop().await;
}

/// init, get, tag, export and rm of a stack, as `pulumi stack init/select/tag/export/rm` do.
pub async fn stack_lifecycle(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let stack_path = format!("/api/stacks/{org}/{ORG_PROJECT}/dev");

    assert_eq!(c.head(&stacks_path(&org)).await.status, 404, "project before any stack");
    let r = create(&server, "dev", json!({"pulumi:project": ORG_PROJECT})).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json(); // the CLI unmarshals the body: it must be JSON
    let again = create(&server, "dev", json!({})).await;
    assert!(again.error_message(409).contains("already exists"));
    assert_eq!(c.head(&stacks_path(&org)).await.status, 200);
    assert!(c.head(&stacks_path(&org)).await.body.is_empty());

    let got = c.get(&stack_path).await;
    assert_eq!(got.status, 200);
    let v = got.json();
    assert_eq!(v["orgName"], org.as_str());
    assert_eq!(v["projectName"], ORG_PROJECT);
    assert_eq!(v["stackName"], "dev");
    assert_eq!(v["activeUpdate"], "");
    assert_eq!(v["version"], 0);
    assert_eq!(v["tags"], json!({"pulumi:project": ORG_PROJECT}));
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v.get("currentOperation").is_none());

    // Tags are replaced, not merged.
    let r = c.patch(&format!("{stack_path}/tags"), &json!({"owner": "team-a", "env": "dev"})).await;
    assert!(r.status.is_success(), "{:?}", r);
    assert_eq!(c.get(&stack_path).await.json()["tags"], json!({"owner": "team-a", "env": "dev"}));
    let r = c.patch(&format!("{stack_path}/tags"), &json!({"owner": "team-b"})).await;
    assert!(r.status.is_success());
    assert_eq!(c.get(&stack_path).await.json()["tags"], json!({"owner": "team-b"}));

    let export = c.get(&format!("{stack_path}/export")).await;
    assert_eq!(export.status, 200);
    let e = export.json();
    assert_eq!(e["version"], 3);
    assert!(e["deployment"].is_object());
    assert!(e["deployment"]["manifest"].is_object());

    let listed = c.get(&format!("/api/user/stacks?project={ORG_PROJECT}")).await.json();
    let names: Vec<&str> = listed["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stackName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["dev"]);
    assert!(listed["stacks"][0].get("lastUpdate").is_none(), "never-updated stack shows n/a");

    let r = c.delete(&format!("{stack_path}?force=false")).await;
    assert!(r.status.is_success(), "{:?}", r);
    c.get(&stack_path).await.error_message(404);
    c.get(&format!("{stack_path}/export")).await.error_message(404);
    c.delete(&format!("{stack_path}?force=false")).await.error_message(404);
    assert_eq!(c.head(&stacks_path(&org)).await.status, 404);
    server.stop().await;
}

async fn stack_names(server: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/api/user/stacks?continuationToken={t}"),
            None => "/api/user/stacks".to_string(),
        };
        let v = server.client().get(&path).await.json();
        for s in v["stacks"].as_array().expect("stacks") {
            out.push(format!(
                "{}/{}",
                s["projectName"].as_str().unwrap(),
                s["stackName"].as_str().unwrap()
            ));
        }
        match v.get("continuationToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

/// Names and tags that break the service's rules get 400 and create nothing.
pub async fn bad_names_are_refused_and_change_nothing(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    for bad in ["bad name", "a/b", "ünicode", &"x".repeat(101), "", ".", ".."] {
        let r = c.post(&stacks_path(&org), &json!({"stackName": bad})).await;
        r.error_message(400);
    }
    // `..` as the project segment of a path is refused too (it is a name, never a path step).
    let r = c.post(&format!("/api/stacks/{org}/.."), &json!({"stackName": "ok"})).await;
    assert!(matches!(r.status.as_u16(), 400 | 404), "{r:?}");
    let r = c.post(&format!("/api/stacks/{org}/bad*project"), &json!({"stackName": "ok"})).await;
    r.error_message(400);
    let r = create(&server, "ok", json!({"bad tag!": "v"})).await;
    assert!(r.error_message(400).contains("stack tag names may only contain"));
    let r = create(&server, "ok", json!({"t": "v".repeat(257)})).await;
    r.error_message(400);
    assert!(stack_names(&server).await.is_empty(), "refused creates must store nothing");

    assert_eq!(create(&server, "ok", json!({"a": "1"})).await.status, 200);
    let r = c
        .patch(&format!("/api/stacks/{org}/{ORG_PROJECT}/ok/tags"), &json!({"no spaces": "x"}))
        .await;
    r.error_message(400);
    let tags = c.get(&format!("/api/stacks/{org}/{ORG_PROJECT}/ok")).await.json()["tags"].clone();
    assert_eq!(tags, json!({"a": "1"}), "a refused tag update must not change tags");
    server.stop().await;
}

/// Malformed JSON, wrong JSON shapes and bad gzip: 400, nothing stored.
pub async fn bad_bodies_are_refused_and_change_nothing(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let path = stacks_path(&org);
    let r = c.send(reqwest::Method::POST, &path, Some(b"{not json".to_vec()), false).await;
    assert!(r.error_message(400).contains("invalid JSON"));
    let r = c.send(reqwest::Method::POST, &path, Some(b"[1,2]".to_vec()), false).await;
    r.error_message(400);
    let r = c.send(reqwest::Method::POST, &path, None, false).await;
    r.error_message(400);
    let r = c.send(reqwest::Method::POST, &path, Some(b"{}".to_vec()), false).await;
    r.error_message(400);
    // A body that claims gzip but is not.
    let raw = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .header("Authorization", format!("token {}", server.token))
        .header("Content-Encoding", "gzip")
        .body(r#"{"stackName":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let v: Value = raw.json().await.unwrap();
    assert_eq!(v["code"], 400);
    assert!(stack_names(&server).await.is_empty());
    server.stop().await;
}

/// Bodies over the limits get 413 with a JSON body, compressed or not.
pub async fn oversized_bodies_get_413(target: Target) {
    let settings = Settings {
        max_request_bytes: 64 * 1024,
        max_decoded_bytes: 128 * 1024,
        ..Settings::default()
    };
    let server = TestServer::start_with(target, settings).await;
    let c = server.client();
    let org = server.user.clone();
    assert_eq!(create(&server, "big", json!({})).await.status, 200);
    let tags_path = format!("/api/stacks/{org}/{ORG_PROJECT}/big/tags");
    let big = json!({"a": "x".repeat(100 * 1024)});
    c.patch(&tags_path, &big).await.error_message(413);
    // Compresses to a few hundred bytes, expands past the decoded cap: a zip bomb is refused.
    let bomb = json!({"a": "x".repeat(200 * 1024)});
    c.patch_gz(&tags_path, &bomb).await.error_message(413);
    let tags = c.get(&format!("/api/stacks/{org}/{ORG_PROJECT}/big")).await.json()["tags"].clone();
    assert!(tags.is_null() || tags == json!({}), "tags must be unchanged: {tags}");
    server.stop().await;
}

/// Unknown API paths get a 404 JSON error; known paths with the wrong method get 405. A GET
/// outside `/api/` is the web console's page (deep links such as `/<org>/<project>/<stack>`
/// load it), with a policy that keeps it to its own scripts; other methods there are API
/// errors too.
pub async fn unknown_routes_and_methods(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    c.get("/api/nope").await.error_message(404);
    for page in ["/", "/acme/web/dev", "/acme/web/dev/updates/3"] {
        let r = server.client_with(None).get(page).await;
        assert_eq!(r.status, 200, "{page}");
        let kind = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(kind.starts_with("text/html"), "{page}: {kind}");
        let csp = r.headers.get("content-security-policy").and_then(|v| v.to_str().ok());
        assert!(csp.is_some_and(|p| p.contains("script-src 'self'")), "{page}: {csp:?}");
        assert!(String::from_utf8_lossy(&r.body).contains("/console/console.js"), "{page}");
    }
    let script = server.client_with(None).get("/console/console.js").await;
    assert_eq!(script.status, 200);
    assert_eq!(server.client_with(None).get("/console/missing.js").await.status, 404);
    c.post("/", &json!({})).await.error_message(404);
    c.send(reqwest::Method::PUT, "/api/user", None, false).await.error_message(405);
    // Unauthenticated requests to unknown routes are still JSON errors.
    server.client_with(None).get("/api/nope").await.error_message(404);
    server.stop().await;
}

/// `stack ls` filters by organization, project and tag, and pages with continuation tokens.
pub async fn listing_filters_and_pages(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    let total = stackhouse::service::stacks::LIST_PAGE + 25;
    let creates = (0..total).map(|i| {
        let c = &c;
        let org = org.clone();
        async move {
            let project = if i % 2 == 0 { "even" } else { "odd" };
            let tags = if i % 3 == 0 { json!({"tier": "gold"}) } else { json!({"tier": "silver"}) };
            let r = c
                .post(
                    &format!("/api/stacks/{org}/{project}"),
                    &json!({"stackName": format!("s{i:03}"), "tags": tags}),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        }
    });
    futures::stream::iter(creates).buffer_unordered(16).collect::<Vec<()>>().await;
    let all = stack_names(&server).await;
    assert_eq!(all.len(), total, "every stack exactly once across pages");
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), total);

    let first = c.get("/api/user/stacks").await.json();
    assert!(first["continuationToken"].is_string(), "more than one page must carry a token");

    let mut odd = 0;
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/api/user/stacks?project=odd&continuationToken={t}"),
            None => "/api/user/stacks?project=odd".to_string(),
        };
        let v = c.get(&path).await.json();
        for s in v["stacks"].as_array().unwrap() {
            assert_eq!(s["projectName"], "odd");
            odd += 1;
        }
        match v.get("continuationToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(odd, total / 2);

    let gold = c
        .get(&format!(
            "/api/user/stacks?project=even&tagName=tier&tagValue=gold&organization={org}"
        ))
        .await
        .json();
    let expect = (0..total).filter(|i| i % 2 == 0 && i % 3 == 0).count();
    assert_eq!(gold["stacks"].as_array().unwrap().len(), expect);
    let none = c.get("/api/user/stacks?organization=somebody-else").await.json();
    assert_eq!(none["stacks"], json!([]));
    c.get("/api/user/stacks?continuationToken=garbage!!").await.error_message(400);
    server.stop().await;
}

/// A user cannot see or touch another organization's stacks.
pub async fn other_organizations_are_off_limits(target: Target) {
    let server = TestServer::start(target).await;
    let org = server.user.clone();
    assert_eq!(create(&server, "mine", json!({})).await.status, 200);
    let mallory = server.other_user("mallory").await;
    let stack_path = format!("/api/stacks/{org}/{ORG_PROJECT}/mine");
    // Answered exactly as if the organization did not exist: its name does not leak.
    let unknown = mallory.get("/api/stacks/no-such-org/proj/mine").await.error_message(404);
    let msg = mallory.get(&stack_path).await.error_message(404);
    assert_eq!(msg.replace(&org, "X"), unknown.replace("no-such-org", "X"));
    mallory.get(&format!("{stack_path}/export")).await.error_message(404);
    mallory.delete(&format!("{stack_path}?force=true")).await.error_message(404);
    mallory.patch(&format!("{stack_path}/tags"), &json!({"pwned": "yes"})).await.error_message(404);
    mallory.post(&stacks_path(&org), &json!({"stackName": "intruder"})).await.error_message(404);
    assert_eq!(mallory.head(&stacks_path(&org)).await.status, 404);
    let listed = mallory.get("/api/user/stacks").await.json();
    assert_eq!(listed["stacks"], json!([]));
    mallory.get("/api/stacks/no-such-org/p/s").await.error_message(404);
    // Mallory's own organization works for her.
    assert_eq!(
        mallory.post("/api/stacks/mallory/p", &json!({"stackName": "hers"})).await.status,
        200
    );
    let c = server.client();
    let r = c.get(&stack_path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tags"], Value::Null);
    assert_eq!(stack_names(&server).await, vec![format!("{ORG_PROJECT}/mine")]);
    server.stop().await;
}

/// `stack rm` on a stack with resources: the exact 400 the CLI turns into a `--force` hint.
pub async fn delete_refuses_stacks_with_resources_unless_forced(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    assert_eq!(create(&server, "full", json!({})).await.status, 200);
    // No update route exists yet to deploy resources, so give the stored stack a resource count.
    let meta = server.app.ports.meta.clone();
    let pk = stackhouse::service::item_keys::org_pk(&org);
    let sk = stackhouse::service::item_keys::stack_sk(ORG_PROJECT, "full");
    let mut item = meta.get(&pk, &sk).await.unwrap().expect("stack item");
    item.set("resource_count", Attr::N(3));
    meta.put(item, None).await.unwrap();

    let path = format!("/api/stacks/{org}/{ORG_PROJECT}/full");
    let r = c.delete(&format!("{path}?force=false")).await;
    assert_eq!(r.error_message(400), "Bad Request: Stack still contains resources.");
    assert_eq!(c.get(&path).await.status, 200, "refused delete keeps the stack");
    let summary = c.get("/api/user/stacks").await.json();
    assert_eq!(summary["stacks"][0]["resourceCount"], 3);
    c.delete(&format!("{path}?force=maybe")).await.error_message(400);
    let r = c.delete(&format!("{path}?force=true")).await;
    assert!(r.status.is_success());
    c.get(&path).await.error_message(404);
    server.stop().await;
}

/// 16 simultaneous `stack init` of one name: exactly one succeeds, the rest get 409.
pub async fn concurrent_creates_have_one_winner(target: Target) {
    let server = TestServer::start(target).await;
    let results =
        join_all((0..16).map(|i| create(&server, "race", json!({"n": i.to_string()})))).await;
    let ok: Vec<_> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "exactly one create wins");
    for r in results.iter().filter(|r| r.status != 200) {
        assert!(r.error_message(409).contains("already exists"));
    }
    let listed = stack_names(&server).await;
    assert_eq!(listed, vec![format!("{ORG_PROJECT}/race")]);
    server.stop().await;
}

/// gzip request bodies are accepted; large responses are gzip-compressed for the CLI.
pub async fn gzip_requests_and_responses(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let org = server.user.clone();
    assert_eq!(create(&server, "gz", json!({})).await.status, 200);
    let tags: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("tag{i}"), json!("v".repeat(200)))).collect();
    let r = c
        .patch_gz(&format!("/api/stacks/{org}/{ORG_PROJECT}/gz/tags"), &Value::Object(tags.clone()))
        .await;
    assert!(r.status.is_success(), "{:?}", r);
    let got = c.get(&format!("/api/stacks/{org}/{ORG_PROJECT}/gz")).await;
    assert_eq!(got.headers.get("content-encoding").map(|v| v.to_str().unwrap()), Some("gzip"));
    assert_eq!(got.json()["tags"], Value::Object(tags));
    server.stop().await;
}
