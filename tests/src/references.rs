//! StackReferences between stacks over real HTTP (`GET …/upstreamreferences`,
//! `…/downstreamreferences`): derived from the `pulumi:pulumi:StackReference` resources of each
//! stack's deployment, the name completed as the CLI completes it, listed only when the named
//! stack exists and the caller may read it. The `references_tests!` macro runs every check
//! against one backend.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::search::import;
use crate::server::{Client, Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! references_tests {
    ($target:expr) => {
        $crate::references_tests!(@each $target;
            upstream_and_downstream_follow_the_deployments,
            members_see_only_references_they_may_read
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::references::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// A deployment of `project`/`stack` with one StackReference per name (as a program wrote it).
fn referring(project: &str, stack: &str, names: &[&str]) -> Value {
    let resources: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"urn": format!("urn:pulumi:{stack}::{project}::pulumi:pulumi:StackReference::ref-{i}"),
                   "type": "pulumi:pulumi:StackReference", "custom": true, "id": name,
                   "inputs": {"name": name},
                   "outputs": {"name": name, "outputs": {}, "secretOutputNames": []}})
        })
        .collect();
    json!({"version": 3, "deployment": {"manifest": {}, "resources": resources}})
}

/// `project/stack@version` of each listed stack.
fn listed(c_reply: &Value) -> Vec<String> {
    c_reply["referencedStacks"]
        .as_array()
        .expect("referencedStacks")
        .iter()
        .map(|s| {
            format!(
                "{}/{}@{}",
                s["routingProject"].as_str().unwrap_or(""),
                s["name"].as_str().unwrap_or(""),
                s["version"]
            )
        })
        .collect()
}

async fn references(c: &Client, org: &str, stack: &str, direction: &str) -> Vec<String> {
    let r = c.get(&format!("/api/stacks/{org}/{stack}/{direction}references")).await;
    assert_eq!(r.status, 200, "{r:?}");
    listed(&r.json())
}

/// Polls the downstream references (the search indexing job records them) until they are
/// `expected`.
async fn wait_downstream(c: &Client, org: &str, stack: &str, expected: &[&str]) {
    let started = Instant::now();
    loop {
        let found = references(c, org, stack, "downstream").await;
        if found == expected {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "downstream of {stack}: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `net/prod` and `web/staging` are referenced by `web/dev` (one by its full name, one by the
/// stack's name alone) and `net/prod` by `api/dev`; a reference to a stack that does not exist
/// is not listed. When `web/dev` drops its references, its upstream list empties at once and
/// the others' downstream lists follow the index.
pub async fn upstream_and_downstream_follow_the_deployments(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let indexing = srv.indexing();
    import(&c, &org, "net", "prod", &referring("net", "prod", &[])).await;
    import(&c, &org, "web", "staging", &referring("web", "staging", &[])).await;
    let full = format!("{org}/net/prod");
    let gone = format!("{org}/net/gone");
    import(&c, &org, "web", "dev", &referring("web", "dev", &[&full, "staging", &gone])).await;
    import(&c, &org, "api", "dev", &referring("api", "dev", &[&full])).await;

    assert_eq!(references(&c, &org, "web/dev", "upstream").await, ["net/prod@1", "web/staging@1"]);
    assert_eq!(references(&c, &org, "net/prod", "upstream").await, Vec::<String>::new());
    wait_downstream(&c, &org, "net/prod", &["api/dev@1", "web/dev@1"]).await;
    wait_downstream(&c, &org, "web/staging", &["web/dev@1"]).await;
    assert_eq!(references(&c, &org, "web/dev", "downstream").await, Vec::<String>::new());

    import(&c, &org, "web", "dev", &referring("web", "dev", &[])).await;
    assert_eq!(references(&c, &org, "web/dev", "upstream").await, Vec::<String>::new());
    wait_downstream(&c, &org, "net/prod", &["api/dev@1"]).await;
    wait_downstream(&c, &org, "web/staging", &[]).await;
    c.get(&format!("/api/stacks/{org}/net/nope/downstreamreferences")).await.error_message(404);
    indexing.stop().await;
    srv.stop().await;
}

/// A member who may read `web/dev` and `net/prod` only sees neither `api/dev` among
/// `net/prod`'s downstream stacks nor `ops/db` among `web/dev`'s upstream ones.
pub async fn members_see_only_references_they_may_read(target: Target) {
    let srv = TestServer::start(target).await;
    let admin = srv.client();
    let org = srv.user.clone();
    let indexing = srv.indexing();
    let full = format!("{org}/net/prod");
    let db = format!("{org}/ops/db");
    import(&admin, &org, "net", "prod", &referring("net", "prod", &[])).await;
    import(&admin, &org, "ops", "db", &referring("ops", "db", &[])).await;
    import(&admin, &org, "web", "dev", &referring("web", "dev", &[&full, &db])).await;
    import(&admin, &org, "api", "dev", &referring("api", "dev", &[&full])).await;
    wait_downstream(&admin, &org, "net/prod", &["api/dev@1", "web/dev@1"]).await;

    let orgs = format!("/api/orgs/{org}");
    let member = srv.other_user("rita-refs").await;
    assert_eq!(
        admin.post(&format!("{orgs}/members/rita-refs"), &json!({"role": "member"})).await.status,
        204
    );
    assert_eq!(admin.patch(&orgs, &json!({"defaultStackPermission": "none"})).await.status, 204);
    let team = json!({"organization": org, "teamType": "pulumi", "name": "readers",
                      "displayName": "Readers", "description": ""});
    assert!(admin.post(&format!("{orgs}/teams/pulumi"), &team).await.status.is_success());
    let add = json!({"memberAction": "add", "member": "rita-refs"});
    assert!(admin.patch(&format!("{orgs}/teams/readers"), &add).await.status.is_success());
    for (project, stack) in [("web", "dev"), ("net", "prod")] {
        let grant = json!({"addStackPermission": {"projectName": project, "stackName": stack, "permission": 101}});
        assert!(admin.patch(&format!("{orgs}/teams/readers"), &grant).await.status.is_success());
    }
    assert_eq!(references(&member, &org, "net/prod", "downstream").await, ["web/dev@1"]);
    assert_eq!(references(&member, &org, "web/dev", "upstream").await, ["net/prod@1"]);
    assert_eq!(references(&admin, &org, "web/dev", "upstream").await, ["net/prod@1", "ops/db@1"]);
    // A stack the member may not read answers as one that does not exist.
    member.get(&format!("/api/stacks/{org}/api/dev/upstreamreferences")).await.error_message(404);
    indexing.stop().await;
    srv.stop().await;
}
