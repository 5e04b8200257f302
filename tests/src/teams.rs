//! Organizations shared between teams, as users see them: members, roles, teams, stack
//! permissions and collaborators, through the API on any backend.

use serde_json::json;

use crate::server::{Client, TestServer};

/// A second user, member of the server user's organization with `role`, and their client.
async fn join(srv: &TestServer, name: &str, role: &str) -> Client {
    let client = srv.other_user(name).await;
    let admin = srv.client();
    let r =
        admin.post(&format!("/api/orgs/{}/members/{name}", srv.user), &json!({"role": role})).await;
    assert_eq!(r.status, 204, "add {name}: {r:?}");
    client
}

fn stack_path(srv: &TestServer, stack: &str) -> String {
    format!("/api/stacks/{}/proj/{stack}", srv.user)
}

async fn create_stack(c: &Client, srv: &TestServer, stack: &str) {
    let r = c.post(&format!("/api/stacks/{}/proj", srv.user), &json!({"stackName": stack})).await;
    assert_eq!(r.status, 200, "create {stack}: {r:?}");
}

async fn stack_names(c: &Client, srv: &TestServer) -> Vec<String> {
    let v = c.get(&format!("/api/user/stacks?organization={}", srv.user)).await.json();
    v["stacks"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["stackName"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// With the default lowered to none, a member sees nothing until a team gives them read; read
/// lets them look but not update; write lets them update; leaving the team takes it away.
pub async fn team_permissions_decide_what_members_see_and_do(srv: &TestServer) {
    let admin = srv.client();
    let org = format!("/api/orgs/{}", srv.user);
    create_stack(&admin, srv, "prod").await;
    create_stack(&admin, srv, "dev").await;
    let bob = join(srv, "bob-teams", "member").await;
    // Default permission write: a fresh organization's members work on every stack.
    assert_eq!(admin.get(&org).await.json()["defaultStackPermission"], "write");
    assert_eq!(stack_names(&bob, srv).await, vec!["dev", "prod"]);

    // Pulumi Cloud's field, with a permission code; then ours, with a name.
    let r = admin.patch(&org, &json!({"setDefaultStackPermission": 101})).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(admin.get(&org).await.json()["defaultStackPermission"], "read");
    let both = json!({"setDefaultStackPermission": 0, "defaultStackPermission": "none"});
    assert_eq!(admin.patch(&org, &both).await.status, 400, "one setting, said once");
    let r = admin.patch(&org, &json!({"defaultStackPermission": "none"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert!(stack_names(&bob, srv).await.is_empty(), "nothing visible without a grant");
    let prod = stack_path(srv, "prod");
    assert_eq!(bob.get(&prod).await.status, 404, "an invisible stack does not exist");

    let team = json!({"organization": srv.user, "teamType": "pulumi", "name": "ops",
                      "displayName": "Operations", "description": "runs prod"});
    assert_eq!(admin.post(&format!("{org}/teams/pulumi"), &team).await.status, 200);
    assert_eq!(admin.post(&format!("{org}/teams/pulumi"), &team).await.status, 409);
    let ops = format!("{org}/teams/ops");
    let add = json!({"memberAction": "add", "member": "bob-teams"});
    assert_eq!(admin.patch(&ops, &add).await.status, 204);
    let grant = |p: i64| json!({"addStackPermission": {"projectName": "proj", "stackName": "prod", "permission": p}});
    assert_eq!(admin.patch(&ops, &grant(101)).await.status, 204);
    assert_eq!(stack_names(&bob, srv).await, vec!["prod"], "read shows prod only");
    assert_eq!(bob.get(&prod).await.status, 200);
    assert_eq!(bob.get(&format!("{prod}/export")).await.status, 200);
    let start = bob.post(&format!("{prod}/update"), &json!({})).await;
    assert_eq!(start.status, 403, "read cannot update: {start:?}");
    let tags = bob.patch(&format!("{prod}/tags"), &json!({"owner": "bob"})).await;
    assert_eq!(tags.status, 403, "read cannot edit tags");

    assert_eq!(admin.patch(&ops, &grant(102)).await.status, 204);
    let tags = bob.patch(&format!("{prod}/tags"), &json!({"owner": "bob"})).await;
    assert_eq!(tags.status, 204, "write edits tags: {tags:?}");
    assert_eq!(bob.delete(&prod).await.status, 403, "write cannot delete the stack");
    let team_page = admin.get(&ops).await.json();
    assert_eq!(team_page["members"][0]["githubLogin"], "bob-teams", "{team_page}");
    assert_eq!(team_page["stacks"][0]["permission"], 102, "{team_page}");
    assert_eq!(admin.get(&format!("{prod}/teams")).await.json()["teams"][0]["name"], "ops");

    // Team pages follow renames and deletions of their stacks.
    let rename = json!({"newName": "production", "newProject": "proj"});
    assert_eq!(admin.post(&format!("{prod}/rename"), &rename).await.status, 204);
    let team_page = admin.get(&ops).await.json();
    assert_eq!(team_page["stacks"][0]["stackName"], "production", "{team_page}");
    let back = json!({"newName": "prod", "newProject": "proj"});
    let production = stack_path(srv, "production");
    assert_eq!(admin.post(&format!("{production}/rename"), &back).await.status, 204);
    let dev = stack_path(srv, "dev");
    let grant_dev = json!({"addStackPermission": {"projectName": "proj", "stackName": "dev",
                                                  "permission": 101}});
    assert_eq!(admin.patch(&ops, &grant_dev).await.status, 204);
    assert_eq!(admin.delete(&dev).await.status, 204);
    let stacks = admin.get(&ops).await.json()["stacks"].clone();
    assert_eq!(stacks.as_array().map(Vec::len), Some(1), "deleted stack left the team: {stacks}");

    let remove = json!({"memberAction": "remove", "member": "bob-teams"});
    assert_eq!(admin.patch(&ops, &remove).await.status, 204);
    assert_eq!(bob.get(&prod).await.status, 404, "leaving the team takes the grant away");
    assert_eq!(admin.patch(&ops, &add).await.status, 204);
    assert_eq!(bob.get(&prod).await.status, 200);
    // A team token has exactly the team's permissions, and owns the stacks it creates.
    let made = admin
        .post(&format!("{ops}/tokens"), &json!({"name": "ci", "description": "ops pipeline"}))
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let team_token = made.json()["tokenValue"].as_str().expect("tokenValue").to_string();
    let ci = srv.client_with(Some(&team_token));
    let me = ci.get("/api/user").await.json();
    assert_eq!(me["tokenInfo"]["team"], "ops", "{me}");
    assert_eq!(stack_names(&ci, srv).await, vec!["prod"], "{me}");
    let tags = ci.patch(&format!("{prod}/tags"), &json!({"owner": "ci"})).await;
    assert_eq!(tags.status, 204, "the team has write: {tags:?}");
    assert_eq!(ci.delete(&prod).await.status, 403, "but not admin");
    create_stack(&ci, srv, "ci-made").await;
    let ci_made = stack_path(srv, "ci-made");
    assert_eq!(ci.get(&ci_made).await.status, 200, "a team sees the stack its token made");
    assert_eq!(ci.delete(&format!("{ci_made}?force=true")).await.status, 204);
    assert_eq!(ci.get(&format!("{org}/members")).await.status, 200, "a member of the org");
    assert_eq!(ci.get(&format!("{org}/hooks")).await.status, 403, "not an admin");

    assert_eq!(admin.delete(&ops).await.status, 204);
    assert_eq!(bob.get(&prod).await.status, 404, "deleting the team takes the grant away");
    assert_eq!(ci.get("/api/user").await.status, 401, "and revokes the team's tokens");
    assert_eq!(admin.get(&ops).await.status, 404);
}

/// A collaborator gets a permission on one stack directly; the creator of a stack is its admin.
pub async fn collaborators_and_creators(srv: &TestServer) {
    let admin = srv.client();
    let org = format!("/api/orgs/{}", srv.user);
    create_stack(&admin, srv, "web").await;
    let carol = join(srv, "carol-collab", "member").await;
    assert_eq!(admin.patch(&org, &json!({"defaultStackPermission": "read"})).await.status, 204);
    let web = stack_path(srv, "web");
    assert_eq!(carol.delete(&format!("{web}?force=true")).await.status, 403);
    let grant = json!({"name": "carol-collab", "permission": 103});
    assert_eq!(admin.post(&format!("{web}/collaborators"), &grant).await.status, 204);
    let list = admin.get(&format!("{web}/collaborators")).await.json();
    assert_eq!(list["collaborators"][0]["permission"], 103, "{list}");
    let rename = json!({"newName": "www", "newProject": "proj"});
    assert_eq!(carol.post(&format!("{web}/rename"), &rename).await.status, 204);
    let www = stack_path(srv, "www");
    // The grant follows the stack (it hangs off the immutable id), and admin may delete.
    assert_eq!(carol.delete(&format!("{www}?force=true")).await.status, 204);

    // A member who creates a stack administers it, even with read as the default.
    create_stack(&carol, srv, "mine").await;
    let mine = stack_path(srv, "mine");
    assert_eq!(carol.delete(&format!("{mine}?force=true")).await.status, 204);
    let stranger = json!({"name": "nobody-here", "permission": 101});
    create_stack(&admin, srv, "other").await;
    let other = stack_path(srv, "other");
    let r = admin.post(&format!("{other}/collaborators"), &stranger).await;
    assert_eq!(r.status, 400, "only members can collaborate: {r:?}");
    let bad = json!({"name": "carol-collab", "permission": 7});
    assert_eq!(admin.post(&format!("{other}/collaborators"), &bad).await.status, 400);
}

/// Roles: members cannot administer; the last admin cannot be demoted or removed; a removed
/// member loses access at once.
pub async fn roles_and_membership(srv: &TestServer) {
    let admin = srv.client();
    let org = format!("/api/orgs/{}", srv.user);
    let dave = join(srv, "dave-roles", "member").await;
    assert_eq!(dave.get(&format!("{org}/members")).await.status, 200);
    // `GET /api/user` names each organization's role (`OrganizationSummaryWithRole`).
    let me = dave.get("/api/user").await.json();
    let mine = me["organizations"].as_array().cloned().unwrap_or_default();
    let here = mine.iter().find(|o| o["githubLogin"] == srv.user.as_str());
    assert_eq!(here.map(|o| o["role"].clone()), Some(json!("member")), "{me}");
    let promote = json!({"role": "admin"});
    let r = dave.patch(&format!("{org}/members/dave-roles"), &promote).await;
    assert_eq!(r.status, 403, "a member cannot promote themselves: {r:?}");
    let demote = json!({"role": "member"});
    let r = admin.patch(&format!("{org}/members/{}", srv.user), &demote).await;
    assert_eq!(r.status, 409, "the only admin cannot be demoted: {r:?}");
    assert_eq!(admin.delete(&format!("{org}/members/{}", srv.user)).await.status, 409);
    let r = admin.post(&format!("{org}/members/no-such-user"), &json!({})).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = admin.patch(&format!("{org}/members/dave-roles"), &json!({"role": "owner"})).await;
    assert_eq!(r.status, 400, "{r:?}");

    assert_eq!(admin.patch(&format!("{org}/members/dave-roles"), &promote).await.status, 204);
    let me = dave.get("/api/user").await.json();
    let mine = me["organizations"].as_array().cloned().unwrap_or_default();
    let here = mine.iter().find(|o| o["githubLogin"] == srv.user.as_str());
    assert_eq!(here.map(|o| o["role"].clone()), Some(json!("admin")), "{me}");
    assert_eq!(dave.patch(&org, &json!({"defaultStackPermission": "read"})).await.status, 204);
    assert_eq!(admin.delete(&format!("{org}/members/dave-roles")).await.status, 204);
    assert_eq!(dave.get(&format!("{org}/members")).await.status, 404, "removed at once");
    let members = admin.get(&format!("{org}/members")).await.json();
    assert_eq!(members["members"].as_array().map(Vec::len), Some(1), "{members}");
}

/// Declares the teams suite for one backend.
#[macro_export]
macro_rules! teams_tests {
    ($target:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn team_permissions_decide_what_members_see_and_do() {
            let srv = $crate::server::TestServer::start(($target)("teams-a")).await;
            $crate::teams::team_permissions_decide_what_members_see_and_do(&srv).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn collaborators_and_creators() {
            let srv = $crate::server::TestServer::start(($target)("teams-b")).await;
            $crate::teams::collaborators_and_creators(&srv).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn roles_and_membership() {
            let srv = $crate::server::TestServer::start(($target)("teams-c")).await;
            $crate::teams::roles_and_membership(&srv).await;
        }
    };
}
