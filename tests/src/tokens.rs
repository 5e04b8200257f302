//! HTTP checks of access tokens: personal, organization and team tokens created,
//! listed and revoked over the API; revoked and expired tokens refused at once; last-used times;
//! organization tokens confined to their organization; admin rights on organization token
//! routes. The `tokens_tests!` macro runs every check against one backend.

use serde_json::{json, Value};
use stackhouse::service::admin::{self, CreateUserRequest};
use stackhouse::service::{identity, item_keys};

use crate::server::{Client, Reply, Target, TestServer};

/// Expands to one `#[tokio::test]` per token check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! tokens_tests {
    ($target:expr) => {
        $crate::tokens_tests!(@each $target;
            personal_tokens_are_created_listed_and_revoked,
            the_bootstrap_token_is_listed_and_revocable,
            expired_tokens_get_401,
            bad_requests_get_400,
            last_used_is_recorded,
            a_late_last_used_write_never_revives_a_revoked_token,
            organization_tokens_act_only_in_their_organization,
            organization_token_routes_need_an_admin,
            team_tokens_need_their_team
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::tokens::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// Creates a token at `path` and returns `(id, value)`.
async fn create(c: &Client, path: &str, body: Value) -> (String, String) {
    let r = c.post(path, &body).await;
    assert_eq!(r.status, 200, "create at {path}: {}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let id = v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}")).to_string();
    let value = v["tokenValue"].as_str().unwrap_or_else(|| panic!("no tokenValue: {v}"));
    assert!(value.starts_with("pul-") && value.len() == 44, "{v}");
    (id, value.to_string())
}

/// Lists tokens at `path`, checking no token value is in the listing.
async fn list(c: &Client, path: &str, values: &[&str]) -> Vec<Value> {
    let r = c.get(path).await;
    assert_eq!(r.status, 200, "list {path}: {}", String::from_utf8_lossy(&r.body));
    let text = String::from_utf8_lossy(&r.body).to_string();
    for value in values {
        assert!(!text.contains(value), "a token value is listed: {text}");
    }
    r.json()["tokens"].as_array().cloned().unwrap_or_else(|| panic!("no tokens: {text}"))
}

fn find<'a>(tokens: &'a [Value], id: &str) -> Option<&'a Value> {
    tokens.iter().find(|t| t["id"] == id)
}

async fn whoami(srv: &TestServer, token: &str) -> Reply {
    srv.client_with(Some(token)).get("/api/user").await
}

/// A user made a member (or admin) of `org` with `admin create-user`'s code; their token.
async fn member(srv: &TestServer, name: &str, org: &str, role: &str) -> String {
    let req = CreateUserRequest { name: name.into(), org: org.into(), role: role.into() };
    let req = req.validate().expect("valid request");
    admin::create_user(srv.app.ports.meta.as_ref(), &req, srv.app.clock.now())
        .await
        .expect("create user")
}

/// Create, list, use, revoke: the next request with a revoked token gets 401.
pub async fn personal_tokens_are_created_listed_and_revoked(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let (id, value) =
        create(&c, "/api/user/tokens", json!({"description": "laptop", "expires": 0})).await;
    let me = whoami(&srv, &value).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["githubLogin"], srv.user.as_str());
    // A personal token is no machine token: no `tokenInfo` (the CLI says "personal").
    assert!(me.json().get("tokenInfo").is_none(), "{}", me.json());

    let tokens = list(&c, "/api/user/tokens", &[&value, &srv.token]).await;
    let t = find(&tokens, &id).unwrap_or_else(|| panic!("{id} not listed: {tokens:?}"));
    assert_eq!(t["description"], "laptop");
    assert_eq!(t["expires"], 0);
    assert!(t["created"].as_i64().unwrap_or_default() > 0, "{t}");
    for field in ["id", "name", "description", "created", "lastUsed", "expires"] {
        assert!(t.get(field).is_some(), "{field} missing: {t}");
    }

    // The new token manages its user's tokens too.
    let own = srv.client_with(Some(&value));
    assert_eq!(own.get("/api/user/tokens").await.status, 200);
    assert_eq!(c.delete(&format!("/api/user/tokens/{id}")).await.status, 204);
    whoami(&srv, &value).await.error_message(401);
    assert!(find(&list(&c, "/api/user/tokens", &[]).await, &id).is_none());
    c.delete(&format!("/api/user/tokens/{id}")).await.error_message(404);
    c.delete("/api/user/tokens/not-hex").await.error_message(404);

    // Another user's token id is not yours to revoke.
    let other = srv.other_user("mallory").await;
    let (other_id, other_value) =
        create(&other, "/api/user/tokens", json!({"description": "m"})).await;
    c.delete(&format!("/api/user/tokens/{other_id}")).await.error_message(404);
    assert_eq!(whoami(&srv, &other_value).await.status, 200);
    assert!(find(&list(&c, "/api/user/tokens", &[]).await, &other_id).is_none());
}

/// The token the server was bootstrapped with is listed and can be revoked like any other.
pub async fn the_bootstrap_token_is_listed_and_revocable(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let tokens = list(&c, "/api/user/tokens", &[&srv.token]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["name"], "bootstrap");
    assert_eq!(tokens[0]["type"], "personal", "Pulumi Cloud's AccessTokenType");
    let id = tokens[0]["id"].as_str().expect("id").to_string();
    let (_, spare) = create(&c, "/api/user/tokens", json!({"description": "spare"})).await;
    let spare = srv.client_with(Some(&spare));
    assert_eq!(spare.delete(&format!("/api/user/tokens/{id}")).await.status, 204);
    c.get("/api/user").await.error_message(401);
    assert_eq!(spare.get("/api/user").await.status, 200);
}

/// A token stops working at its expiry time.
pub async fn expired_tokens_get_401(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let expires = srv.app.clock.now() + 3600;
    let body = json!({"description": "short-lived", "expires": expires});
    let (id, value) = create(&c, "/api/user/tokens", body).await;
    assert_eq!(whoami(&srv, &value).await.status, 200);
    let tokens = list(&c, "/api/user/tokens", &[&value]).await;
    assert_eq!(find(&tokens, &id).map(|t| t["expires"].clone()), Some(json!(expires)));
    srv.app.clock.advance(3600);
    whoami(&srv, &value).await.error_message(401);
    assert_eq!(c.get("/api/user").await.status, 200, "tokens without expiry still work");
}

/// Invalid requests get 400 with a reason; nothing is created.
pub async fn bad_requests_get_400(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let now = srv.app.clock.now();
    let org = format!("/api/orgs/{}/tokens", srv.user);
    let long = "x".repeat(101);
    for (path, body) in [
        ("/api/user/tokens", json!({"description": "past", "expires": now - 10})),
        ("/api/user/tokens", json!({"description": "neg", "expires": -1})),
        ("/api/user/tokens", json!({"description": "d".repeat(501)})),
        ("/api/user/tokens", json!({"description": "bell\u{7}"})),
        ("/api/user/tokens", json!({"description": 5})),
        (org.as_str(), json!({"description": "no name"})),
        (org.as_str(), json!({"name": long, "description": ""})),
        (org.as_str(), json!({"name": "n", "expires": now})),
    ] {
        let r = c.post(path, &body).await;
        let message = r.error_message(400);
        assert!(!message.is_empty(), "{body}");
    }
    let r = c.send(http::Method::POST, "/api/user/tokens", Some(b"{".to_vec()), false).await;
    r.error_message(400);
    assert_eq!(list(&c, "/api/user/tokens", &[]).await.len(), 1, "only the bootstrap token");
    assert!(list(&c, &org, &[]).await.is_empty());
}

/// `lastUsed` is 0 until the token authenticates a request, then about the time of that use.
pub async fn last_used_is_recorded(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let (id, value) = create(&c, "/api/user/tokens", json!({"description": "ci"})).await;
    let tokens = list(&c, "/api/user/tokens", &[&value]).await;
    assert_eq!(find(&tokens, &id).map(|t| t["lastUsed"].clone()), Some(json!(0)));
    let before = srv.app.clock.now();
    assert_eq!(whoami(&srv, &value).await.status, 200);
    let tokens = list(&c, "/api/user/tokens", &[&value]).await;
    let used = find(&tokens, &id).and_then(|t| t["lastUsed"].as_i64()).unwrap_or_default();
    assert!(used >= before && used <= srv.app.clock.now(), "lastUsed {used}, before {before}");
    // Within a minute no new write; after it, a newer time.
    srv.app.clock.advance(120);
    assert_eq!(whoami(&srv, &value).await.status, 200);
    let tokens = list(&c, "/api/user/tokens", &[&value]).await;
    let later = find(&tokens, &id).and_then(|t| t["lastUsed"].as_i64()).unwrap_or_default();
    assert!(later >= used + 120, "lastUsed {later} after {used}");
}

/// An organization token creates and reads stacks of its organization, and nothing elsewhere;
/// it cannot manage personal tokens; names are unique per organization; revoking it is
/// immediate.
pub async fn organization_tokens_act_only_in_their_organization(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let path = format!("/api/orgs/{org}/tokens");
    let body = json!({"name": "deploy-bot", "description": "CI", "expires": 0});
    let (id, value) = create(&c, &path, body.clone()).await;
    c.post(&path, &body).await.error_message(409);
    let tokens = list(&c, &path, &[&value]).await;
    let t = find(&tokens, &id).unwrap_or_else(|| panic!("{tokens:?}"));
    assert_eq!((t["name"].as_str(), t["admin"].as_bool()), (Some("deploy-bot"), Some(false)));
    assert_eq!(t["type"], "organization");

    let bot = srv.client_with(Some(&value));
    let me = bot.get("/api/user").await.json();
    assert_eq!(me["tokenInfo"]["organization"], org.as_str(), "{me}");
    let created = bot.post(&format!("/api/stacks/{org}/web"), &json!({"stackName": "dev"})).await;
    assert_eq!(created.status, 200, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(bot.get(&format!("/api/stacks/{org}/web/dev")).await.status, 200);
    let stacks = bot.get(&format!("/api/user/stacks?organization={org}")).await;
    assert_eq!(stacks.status, 200);
    assert_eq!(stacks.json()["stacks"][0]["stackName"], "dev", "{}", stacks.json());

    // Another organization: nothing.
    let other = srv.other_user("zed").await;
    let r = other.post("/api/stacks/zed/web", &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200);
    let r = bot.post("/api/stacks/zed/web", &json!({"stackName": "prod"})).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{r:?}");
    let r = bot.get("/api/stacks/zed/web/dev").await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{r:?}");
    let r = bot.get("/api/orgs/zed/tokens").await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{r:?}");

    // Not a user: no personal tokens; not admin: no organization tokens.
    bot.get("/api/user/tokens").await.error_message(403);
    bot.post("/api/user/tokens", &json!({"description": "x"})).await.error_message(403);
    bot.get(&path).await.error_message(403);

    // An admin organization token may manage its organization's tokens.
    let admin_body = json!({"name": "org-admin", "description": "", "admin": true});
    let (admin_id, admin_value) = create(&c, &path, admin_body).await;
    let boss = srv.client_with(Some(&admin_value));
    let tokens = list(&boss, &path, &[&value, &admin_value]).await;
    assert_eq!(find(&tokens, &admin_id).map(|t| t["admin"].clone()), Some(json!(true)));

    assert_eq!(boss.delete(&format!("{path}/{id}")).await.status, 204);
    bot.get("/api/user").await.error_message(401);
    // The name is free again.
    let (_, again) = create(&c, &path, body).await;
    assert_eq!(whoami(&srv, &again).await.status, 200);
    // An organization's token id is unknown under the user and vice versa.
    c.delete(&format!("/api/user/tokens/{admin_id}")).await.error_message(404);
}

/// Members who are not admins, and non-members, are refused on organization token routes.
pub async fn organization_token_routes_need_an_admin(target: Target) {
    let srv = TestServer::start(target).await;
    let org = srv.user.clone();
    let path = format!("/api/orgs/{org}/tokens");
    let bob = srv.client_with(Some(&member(&srv, "bob", &org, "member").await));
    bob.get(&path).await.error_message(403);
    bob.post(&path, &json!({"name": "mine", "description": ""})).await.error_message(403);
    let (id, _) = create(&srv.client(), &path, json!({"name": "ci", "description": ""})).await;
    bob.delete(&format!("{path}/{id}")).await.error_message(403);
    // Members still manage their own personal tokens.
    let (own, _) = create(&bob, "/api/user/tokens", json!({"description": "bob's"})).await;
    assert_eq!(bob.delete(&format!("/api/user/tokens/{own}")).await.status, 204);

    let stranger = srv.other_user("eve").await;
    let r = stranger.get(&path).await;
    assert!(matches!(r.status.as_u16(), 403 | 404), "{r:?}");
    srv.client().get("/api/orgs/no-such-org/tokens").await.error_message(404);

    // Promoted (create-user again with another role), bob may.
    let promoted = srv.client_with(Some(&member(&srv, "bob", &org, "admin").await));
    assert_eq!(promoted.get(&path).await.status, 200);
}

/// Team tokens: 404 for a missing team; create, list, use, revoke.
pub async fn team_tokens_need_their_team(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let path = format!("/api/orgs/{org}/teams/web/tokens");
    let body = json!({"name": "web-ci", "description": "the web team's CI"});
    c.get(&path).await.error_message(404);
    c.post(&path, &body).await.error_message(404);
    c.delete(&format!("{path}/{}", "0".repeat(20))).await.error_message(404);

    let team = json!({"organization": org, "teamType": "pulumi", "name": "web",
                      "displayName": "Web", "description": ""});
    let r = c.post(&format!("/api/orgs/{org}/teams/pulumi"), &team).await;
    assert_eq!(r.status, 200, "create the team: {}", String::from_utf8_lossy(&r.body));

    let (id, value) = create(&c, &path, body.clone()).await;
    c.post(&path, &body).await.error_message(409);
    let tokens = list(&c, &path, &[&value]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["id"], id.as_str());
    assert!(tokens[0].get("admin").is_none(), "{tokens:?}");
    assert_eq!(tokens[0]["type"], "team", "{tokens:?}");
    // Team tokens are not organization tokens.
    assert!(list(&c, &format!("/api/orgs/{org}/tokens"), &[&value]).await.is_empty());

    let me = whoami(&srv, &value).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["tokenInfo"]["team"], "web", "{}", me.json());
    assert_eq!(c.delete(&format!("{path}/{id}")).await.status, 204);
    whoami(&srv, &value).await.error_message(401);
    assert!(list(&c, &path, &[]).await.is_empty());
}

/// The race of a request authenticated just before its token was revoked: its last-used write
/// lands after the revocation and must not bring the token back.
pub async fn a_late_last_used_write_never_revives_a_revoked_token(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let (id, value) = create(&c, "/api/user/tokens", json!({"description": "racy"})).await;
    let meta = srv.app.ports.meta.as_ref();
    let key = item_keys::token_pk(&identity::hash_token(&value));
    let item = meta.get(&key, item_keys::TOKEN_SK).await.expect("get").expect("token item");
    assert_eq!(c.delete(&format!("/api/user/tokens/{id}")).await.status, 204);
    identity::record_last_used(meta, item, srv.app.clock.now()).await;
    assert!(meta.get(&key, item_keys::TOKEN_SK).await.expect("get").is_none(), "token revived");
    whoami(&srv, &value).await.error_message(401);
}
