//! Stack search over real HTTP (`GET /api/orgs/{org}/search/stacks`, our own route for the
//! console): by words, project, name, tags and how the last update went, sorted and paged,
//! over the stacks the caller may read. The `stack_search_tests!` macro runs every check
//! against one backend.

use serde_json::{json, Value};

use crate::server::{Client, Target, TestServer};
use crate::session;

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! stack_search_tests {
    ($target:expr) => {
        $crate::stack_search_tests!(@each $target;
            stacks_are_found_by_words_names_tags_and_status,
            members_find_only_stacks_they_may_read
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::stack_search::$name(make(stringify!($name))).await;
            }
        )*
    };
}

fn deployment(n: usize) -> Value {
    let resources: Vec<Value> = (0..n)
        .map(|i| {
            json!({"urn": format!("urn:pulumi:s::p::aws:s3/bucket:Bucket::b{i}"),
                   "type": "aws:s3/bucket:Bucket", "custom": true, "id": format!("b{i}")})
        })
        .collect();
    json!({"version": 3, "deployment": {"manifest": {}, "resources": resources}})
}

async fn create(c: &Client, org: &str, project: &str, stack: &str) -> String {
    let path = format!("/api/stacks/{org}/{project}");
    assert_eq!(c.post(&path, &json!({"stackName": stack})).await.status, 200);
    format!("{path}/{stack}")
}

/// `project/stack:result` of each stack found, in order.
fn found(answer: &Value) -> Vec<String> {
    answer["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .map(|s| {
            format!(
                "{}/{}:{}",
                s["projectName"].as_str().unwrap_or("?"),
                s["stackName"].as_str().unwrap_or("?"),
                s["lastResult"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

async fn search(c: &Client, org: &str, query: &str) -> Value {
    let r = c.get(&format!("/api/orgs/{org}/search/stacks?{query}")).await;
    assert_eq!(r.status, 200, "{query}: {r:?}");
    r.json()
}

/// Five stacks: `web/dev` and `web/prod` updated (one and three resources, `prod` later),
/// tagged; `data/prod` whose update failed; `ops/live` with an update running; `api/staging`
/// never updated.
pub async fn stacks_are_found_by_words_names_tags_and_status(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let dev = create(&c, &org, "web", "dev").await;
    let prod = create(&c, &org, "web", "prod").await;
    let data = create(&c, &org, "data", "prod").await;
    let live = create(&c, &org, "ops", "live").await;
    create(&c, &org, "api", "staging").await;
    session::up(&c, &dev, &[], &[deployment(1)]).await;
    srv.app.clock.advance(10);
    session::up(&c, &prod, &[], &[deployment(3)]).await;
    let failed = session::create_and_start(&c, &data, "update", false).await.expect("update");
    assert!(failed.complete(&c, "failed").await.status.is_success());
    let _running = session::create_and_start(&c, &live, "update", false).await.expect("update");
    // Tags after the updates: an update sets the stack's tags to its project's.
    for (stack, tags) in
        [(&dev, json!({"env": "dev"})), (&prod, json!({"env": "production", "team": "web"}))]
    {
        let r = c.patch(&format!("{stack}/tags"), &tags).await;
        assert!(r.status.is_success(), "tags: {r:?}");
    }

    let all = search(&c, &org, "").await;
    assert_eq!(all["total"], 5);
    assert_eq!(
        found(&all),
        [
            "api/staging:never",
            "data/prod:failed",
            "ops/live:in-progress",
            "web/dev:succeeded",
            "web/prod:succeeded"
        ]
    );
    let web_prod = &all["stacks"][4];
    assert_eq!(web_prod["orgName"], org.as_str());
    assert_eq!(web_prod["version"], 1);
    assert_eq!(web_prod["resourceCount"], 3);
    assert_eq!(web_prod["tags"], json!({"env": "production", "team": "web"}));
    assert!(web_prod["lastUpdate"].as_i64().is_some());
    assert!(all["stacks"][0].get("lastUpdate").is_none(), "never updated");

    for (query, want) in [
        ("query=prod", &["data/prod:failed", "web/prod:succeeded"][..]),
        ("query=PRODUCTION", &["web/prod:succeeded"][..]),
        ("query=web%20dev", &["web/dev:succeeded"][..]),
        ("project=WE", &["web/dev:succeeded", "web/prod:succeeded"][..]),
        ("name=dev", &["web/dev:succeeded"][..]),
        ("tag=env%3Dproduction", &["web/prod:succeeded"][..]),
        ("tag=env%3Dprod", &[][..]),
        ("tag=env", &["web/dev:succeeded", "web/prod:succeeded"][..]),
        ("tag=env&tag=team", &["web/prod:succeeded"][..]),
        ("status=failed", &["data/prod:failed"][..]),
        ("status=never&status=in-progress", &["api/staging:never", "ops/live:in-progress"][..]),
        (
            "status=succeeded&project=web&sort=lastUpdate",
            &["web/prod:succeeded", "web/dev:succeeded"][..],
        ),
        ("sort=resourceCount&status=succeeded", &["web/prod:succeeded", "web/dev:succeeded"][..]),
        (
            "sort=resourceCount&asc=true&project=web",
            &["web/dev:succeeded", "web/prod:succeeded"][..],
        ),
        ("sort=name&asc=false&project=web", &["web/prod:succeeded", "web/dev:succeeded"][..]),
    ] {
        let answer = search(&c, &org, query).await;
        assert_eq!(found(&answer), want, "{query}");
        assert_eq!(answer["total"], want.len(), "{query}");
    }

    let first = search(&c, &org, "size=2").await;
    assert_eq!(first["total"], 5);
    assert_eq!(found(&first), ["api/staging:never", "data/prod:failed"]);
    assert!(first["pagination"].get("previous").is_none());
    let next = first["pagination"]["next"].as_str().expect("next").to_string();
    assert!(next.contains("size=2") && next.contains("page=2"), "{next}");
    let second = c.get(&next).await.json();
    assert_eq!(found(&second), ["ops/live:in-progress", "web/dev:succeeded"]);
    let last = search(&c, &org, "size=2&page=3").await;
    assert_eq!(found(&last), ["web/prod:succeeded"]);
    assert!(last["pagination"].get("next").is_none());
    assert!(last["pagination"]["previous"].as_str().is_some_and(|p| p.contains("page=2")));

    for (query, says) in [
        ("status=ok", "no status"),
        ("sort=age", "cannot sort"),
        ("tag=%3Dx", "names no tag"),
        ("size=0", "size"),
        ("size=501", "size"),
        ("page=0", "page"),
        ("asc=maybe", "asc"),
    ] {
        let r = c.get(&format!("/api/orgs/{org}/search/stacks?{query}")).await;
        let message = r.error_message(400);
        assert!(message.contains(says), "{query}: {message}");
    }
    srv.stop().await;
}

/// A member with read access to one stack (members' default being none) finds that stack
/// only, in results and in the total; a non-member gets a 404.
pub async fn members_find_only_stacks_they_may_read(target: Target) {
    let srv = TestServer::start(target).await;
    let admin = srv.client();
    let org = srv.user.clone();
    for (project, stack) in [("web", "dev"), ("web", "prod"), ("data", "prod")] {
        create(&admin, &org, project, stack).await;
    }
    let orgs = format!("/api/orgs/{org}");
    let member = srv.other_user("sally-stacks").await;
    let r = admin.post(&format!("{orgs}/members/sally-stacks"), &json!({"role": "member"})).await;
    assert_eq!(r.status, 204);
    assert_eq!(admin.patch(&orgs, &json!({"defaultStackPermission": "none"})).await.status, 204);
    let team = json!({"organization": org, "teamType": "pulumi", "name": "devs",
                      "displayName": "Devs", "description": ""});
    assert!(admin.post(&format!("{orgs}/teams/pulumi"), &team).await.status.is_success());
    let add = json!({"memberAction": "add", "member": "sally-stacks"});
    assert!(admin.patch(&format!("{orgs}/teams/devs"), &add).await.status.is_success());
    let grant = json!({"addStackPermission": {"projectName": "web", "stackName": "dev", "permission": 101}});
    assert!(admin.patch(&format!("{orgs}/teams/devs"), &grant).await.status.is_success());

    let answer = search(&member, &org, "").await;
    assert_eq!(found(&answer), ["web/dev:never"]);
    assert_eq!(answer["total"], 1);
    assert_eq!(search(&admin, &org, "").await["total"], 3);
    let outsider = srv.other_user("oscar-stacks").await;
    outsider.get(&format!("/api/orgs/{org}/search/stacks")).await.error_message(404);
    srv.stop().await;
}
