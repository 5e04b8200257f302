//! Who may do what with an environment, as an organization admin sets it up through the API:
//! the members' default (`defaultEnvironmentPermission`), team grants (`PATCH
//! /api/orgs/{org}/teams/{team}` with `addEnvironmentPermission`, `editEnvironmentPermission`,
//! `removeEnvironment`), creators, and imports the caller may not open.

use reqwest::Method;
use serde_json::json;
use stackhouse::service::identity::{self, Role};

use crate::environments::{create, diagnostics, mentions, open, set, show, ROOT};
use crate::server::{Client, Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`.
#[macro_export]
macro_rules! environment_access_tests {
    ($target:expr) => {
        $crate::environment_access_tests!(@each $target;
            team_grants_and_the_default_decide_what_members_do
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::environment_access::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// A member of `org` (no role but member) with a token; returns their client.
async fn member(srv: &TestServer, org: &str, name: &str) -> Client {
    let meta = srv.app.ports.meta.as_ref();
    let now = srv.app.clock.now();
    let token = format!("pul-{:040x}", rand::random::<u128>());
    identity::ensure_identity(meta, name, name, Some((&token, "test")), now).await.expect("user");
    identity::add_member(meta, org, name, Role::Member, now).await.expect("member");
    srv.client_with(Some(&token))
}

async fn patch(c: &Client, path: &str, body: serde_json::Value) -> u16 {
    let r = c.send(Method::PATCH, path, Some(body.to_string().into_bytes()), false).await;
    assert!(r.status.as_u16() < 500, "{path}: {}", show(&r));
    r.status.as_u16()
}

/// With the members' default lowered to `none`, a member sees no environment until a team of
/// theirs is granted one; then read, open, write and admin each allow exactly their routes.
/// What they create is theirs. An import they may not open is not there for them.
pub async fn team_grants_and_the_default_decide_what_members_do(target: Target) {
    let srv = TestServer::start(target).await;
    let admin = srv.client();
    let org = srv.user.clone();
    let path = create(&admin, &org, "infra", "prod").await;
    set(&admin, &path, "values:\n  region: eu\n  pw:\n    fn::secret: hunter2\n").await;
    let hidden = create(&admin, &org, "infra", "hidden").await;
    set(&admin, &hidden, "values:\n  token:\n    fn::secret: from-hidden\n").await;
    let m = member(&srv, &org, "env-member").await;

    // The default is write, as in Pulumi Cloud: a member may change it.
    let r = admin.get(&format!("/api/orgs/{org}")).await;
    assert_eq!(r.json()["defaultEnvironmentPermission"], "write", "{}", show(&r));
    assert_eq!(m.get(&path).await.status, 200);
    // Lowered to none: invisible.
    let bad = json!({"defaultEnvironmentPermission": "admin"});
    assert_eq!(patch(&admin, &format!("/api/orgs/{org}"), bad).await, 400);
    let none = json!({"defaultEnvironmentPermission": "none"});
    assert_eq!(patch(&m, &format!("/api/orgs/{org}"), none.clone()).await, 403, "members may not");
    assert_eq!(patch(&admin, &format!("/api/orgs/{org}"), none).await, 204);
    assert_eq!(
        admin.get(&format!("/api/orgs/{org}")).await.json()["defaultEnvironmentPermission"],
        "none"
    );
    m.get(&path).await.error_message(404);
    let listed = m.get(&format!("{ROOT}/{org}")).await.json();
    assert_eq!(listed["environments"], json!([]), "{listed}");

    // A team of theirs gets read.
    let teams = format!("/api/orgs/{org}/teams");
    let r = admin.post(&format!("{teams}/pulumi"), &json!({"name": "ops"})).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let team = format!("{teams}/ops");
    assert_eq!(
        patch(&admin, &team, json!({"memberAction": "add", "member": "env-member"})).await,
        204
    );
    let grant = |verb: &str, permission: &str| json!({verb: {"projectName": "infra", "envName": "prod", "permission": permission}});
    assert_eq!(patch(&admin, &team, grant("addEnvironmentPermission", "superuser")).await, 400);
    m.get(&path).await.error_message(404);
    assert_eq!(patch(&admin, &team, grant("addEnvironmentPermission", "read")).await, 204);
    let listed = m.get(&format!("{ROOT}/{org}")).await.json();
    let names: Vec<&str> = listed["environments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["prod"], "only what the team may read: {listed}");
    let r = m.get(&path).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert!(!String::from_utf8_lossy(&r.body).contains("hunter2"));
    m.get(&format!("{path}/decrypt")).await.error_message(403);
    let r = m.send(Method::POST, &format!("{path}/open?duration=1h0m0s"), None, false).await;
    r.error_message(403);
    let detail = admin.get(&team).await.json();
    assert_eq!(
        detail["environments"],
        json!([{"projectName": "infra", "envName": "prod", "permission": "read"}]),
        "{detail}"
    );

    // Open: secrets in the clear, no changes.
    assert_eq!(patch(&admin, &team, grant("editEnvironmentPermission", "open")).await, 204);
    let r = m.get(&format!("{path}/decrypt")).await;
    assert!(String::from_utf8_lossy(&r.body).contains("hunter2"), "{}", show(&r));
    open(&m, &path, "1h0m0s").await;
    let change = "values:\n  region: us\n";
    let r = m.send(Method::PATCH, &path, Some(change.as_bytes().to_vec()), false).await;
    r.error_message(403);

    // An import they may not open is not there for them; the admin opens it whole.
    let app = create(&admin, &org, "infra", "app").await;
    set(&admin, &app, "imports:\n  - infra/hidden\nvalues:\n  mine: 1\n").await;
    assert_eq!(
        patch(&admin, &team, json!({"addEnvironmentPermission": {"projectName": "infra", "envName": "app", "permission": "open"}})).await,
        204
    );
    let r = m.send(Method::POST, &format!("{app}/open?duration=1h0m0s"), None, false).await;
    assert!(mentions(&diagnostics(&r), "infra/hidden"), "{}", show(&r));
    assert!(!String::from_utf8_lossy(&r.body).contains("from-hidden"));
    open(&admin, &app, "1h0m0s").await;

    // Write: changes, but no delete.
    assert_eq!(patch(&admin, &team, grant("editEnvironmentPermission", "write")).await, 204);
    let r = m.send(Method::PATCH, &path, Some(change.as_bytes().to_vec()), false).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    m.send(Method::DELETE, &path, None, false).await.error_message(403);
    // Admin: delete.
    assert_eq!(patch(&admin, &team, grant("editEnvironmentPermission", "admin")).await, 204);
    assert_eq!(m.send(Method::DELETE, &path, None, false).await.status, 204);
    assert_eq!(admin.get(&path).await.status, 404);
    let detail = admin.get(&team).await.json();
    let granted: Vec<&str> = detail["environments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["envName"].as_str())
        .collect();
    assert_eq!(granted, ["app"], "the deleted environment's grant went with it: {detail}");

    // Removing the grant hides it again; what a member creates is theirs to delete.
    let remove = json!({"removeEnvironment": {"projectName": "infra", "envName": "app"}});
    assert_eq!(patch(&admin, &team, remove).await, 204);
    m.get(&app).await.error_message(404);
    let own = create(&m, &org, "infra", "mine").await;
    assert_eq!(m.get(&own).await.status, 200);
    assert_eq!(m.send(Method::DELETE, &own, None, false).await.status, 204);
    srv.stop().await;
}
