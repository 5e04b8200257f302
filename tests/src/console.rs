//! The web console in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver, `fantoccini`) against the emulator, as a person would use it — sign in with a
//! token, find a stack, open it, follow a deep link the Pulumi CLI would print, sign out.
//! `.ci/test` installs `chromium` and `chromium-driver`; without them these tests fail saying
//! so (they never skip).

mod browser;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use browser::{axe_violations, Browser};
use browser::{check_pages, tab_to, WAIT};

use crate::server::{Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`.
#[macro_export]
macro_rules! console_tests {
    ($target:expr) => {
        $crate::console_tests!(@each $target;
            sign_in_find_a_stack_and_open_it,
            a_running_updates_events_appear_live,
            a_stacks_outputs_resources_and_state,
            a_token_is_shown_once_then_revoked,
            a_member_sees_only_the_stacks_they_may_read,
            every_page_passes_axe_at_two_widths,
            the_main_flow_by_keyboard_alone,
            resources_environments_deployments_and_policies,
            the_audit_log_filters_and_exports
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::console::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// Creates stack `project/stack` of `org` with `tags`.
async fn stack(c: &crate::server::Client, org: &str, project: &str, stack: &str, tags: Value) {
    let r = c
        .post(&format!("/api/stacks/{org}/{project}"), &json!({"stackName": stack, "tags": tags}))
        .await;
    assert_eq!(r.status, 200, "create {project}/{stack}: {}", String::from_utf8_lossy(&r.body));
}

/// Sign in (a wrong token is refused, the right one is kept for the tab), open the
/// organization, narrow its stacks by a search, open one and see its tags, open its update and
/// read its engine events as the CLI printed them, follow the deep links the Pulumi CLI prints
/// for a stack and an update, sign out (a deep link then asks to sign in again).
pub async fn sign_in_find_a_stack_and_open_it(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    stack(&c, &org, "web", "dev", json!({"team": "frontend"})).await;
    stack(&c, &org, "api", "prod", json!({})).await;
    let prod = format!("/api/stacks/{org}/api/prod");
    crate::session::up(&c, &prod, &crate::fixtures::events("up"), &[]).await;
    // Tagged after the update, whose start (as the CLI's) sets the stack's tags.
    let tagged = c.patch(&format!("{prod}/tags"), &json!({"team": "backend"})).await;
    assert!(tagged.status.is_success(), "tags: {}", String::from_utf8_lossy(&tagged.body));
    let b = Browser::start().await;
    b.client.goto(&format!("{}/", srv.base)).await.expect("open the console");
    b.find("form.signin").await;
    b.type_into("#token", "pul-not-a-token").await;
    b.find("form.signin button[type=submit]").await.click().await.expect("submit");
    b.text_until("form.signin .error", |t| t.contains("not valid")).await;
    b.type_into("#token", &srv.token).await;
    b.find("form.signin button[type=submit]").await.click().await.expect("submit");
    b.text_until("main h1", |t| t == "Organizations").await;

    b.click_link(&org).await;
    b.text_until("main h1", |t| t == "Stacks").await;
    b.text_until("main [role=status]", |t| t == "2 of 2 stacks").await;
    let results = b.texts("main tbody tr td:nth-child(4)").await;
    assert_eq!(results, ["succeeded", "never updated"], "newest first, with how each went");
    b.type_into("#stack-search", "we").await;
    b.text_until("main [role=status]", |t| t == "1 of 2 stacks").await;
    assert_eq!(b.texts("main tbody tr td:first-child").await, ["dev"], "by project name");
    b.type_into("#stack-search", "team:backend").await;
    b.text_until("main tbody", |t| t.contains("prod") && !t.contains("dev")).await;
    assert_eq!(b.texts("main tbody tr td:first-child").await, ["prod"], "by tag");
    b.click_link("prod").await;
    b.text_until("main h1", |t| t == "prod").await;
    let facts = b.texts("main dl.facts dd").await;
    assert!(facts.contains(&"backend".to_string()), "the stack's tags: {facts:?}");
    let url = b.client.current_url().await.expect("url");
    assert_eq!(url.path(), format!("/{org}/api/prod"), "the CLI's stack path");
    b.text_until("main tbody", |t| t.contains("succeeded") && t.contains("1 create")).await;

    // Its update, with the engine's events as the CLI prints them.
    b.click_link("1").await;
    b.text_until("main h1", |t| t == "Update 1").await;
    let log = b.text_until("main [role=log]", |t| t.contains("Resources:")).await;
    assert!(log.contains("+ aws:eks/cluster:Cluster eks-cluster creating"), "{log}");
    assert!(log.contains("+ aws:eks/cluster:Cluster eks-cluster created"), "{log}");
    assert!(log.contains("Resources: 1 create, 5 same"), "{log}");
    let url = b.client.current_url().await.expect("url");
    assert_eq!(url.path(), format!("/{org}/api/prod/updates/1"), "the CLI's permalink");

    // The Pulumi CLI's link to a stack (PULUMI_CONSOLE_DOMAIN), opened directly.
    b.client.goto(&format!("{}/{org}/web/dev", srv.base)).await.expect("deep link");
    b.text_until("main h1", |t| t == "dev").await;
    b.find("#account button").await.click().await.expect("sign out");
    b.find("form.signin").await;
    b.client.goto(&format!("{}/{org}/web/dev", srv.base)).await.expect("deep link");
    b.find("form.signin").await;
    b.close().await;
    srv.stop().await;
}

/// Signs in at the console's root with the server's token.
async fn sign_in(b: &Browser, srv: &TestServer) {
    b.client.goto(&format!("{}/", srv.base)).await.expect("open the console");
    b.type_into("#token", &srv.token).await;
    b.find("form.signin button[type=submit]").await.click().await.expect("submit");
    b.text_until("main h1", |t| t == "Organizations").await;
}

/// The page of a running update follows it over the event stream's WebSocket: what the CLI
/// sends appears, and when the update ends the page says so and shows its result.
pub async fn a_running_updates_events_appear_live(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let (c, org) = (srv.client(), srv.user.clone());
    stack(&c, &org, "web", "dev", json!({})).await;
    let path = format!("/api/stacks/{org}/web/dev");
    let run = crate::session::create_and_start(&c, &path, "update", false)
        .await
        .expect("the update starts");
    let b = Browser::start().await;
    sign_in(&b, &srv).await;
    let page = format!("{}/{org}/web/dev/updates/{}", srv.base, run.version);
    b.client.goto(&page).await.expect("the update's page");
    b.text_until("main h1", |t| t == format!("Update {}", run.version)).await;
    b.text_until("main p[role=status]", |t| t.contains("live")).await;

    let line = |n: i64, text: &str| {
        json!({"sequence": n, "timestamp": n, "diagnosticEvent":
               {"message": format!("{text}\n"), "color": "raw", "severity": "info"}})
    };
    crate::session::send_events(&c, &run, &[line(1, "hello from the engine")]).await;
    b.text_until("main [role=log]", |t| t.contains("hello from the engine")).await;
    crate::session::send_events(&c, &run, &[line(2, "and again")]).await;
    let log = b.text_until("main [role=log]", |t| t.contains("and again")).await;
    assert_eq!(log.matches("hello from the engine").count(), 1, "each event once: {log}");

    assert!(run.complete(&c, "succeeded").await.status.is_success());
    b.text_until("main p[role=status]", |t| t.contains("ended")).await;
    b.text_until("main dl.facts", |t| t.contains("succeeded")).await;
    b.close().await;
    sockets.stop().await;
    srv.stop().await;
}

/// A stack's page shows its outputs (a secret hidden until "Show", which decrypts it), its
/// resources as a tree by parent, and downloads its state as `pulumi stack export` would.
pub async fn a_stacks_outputs_resources_and_state(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    stack(&c, &org, "web", "dev", json!({})).await;
    let path = format!("/api/stacks/{org}/web/dev");
    let sealed = c.post(&format!("{path}/encrypt"), &json!({"plaintext": "Imh1bnRlcjIi"})).await;
    assert_eq!(sealed.status, 200, "encrypt: {}", String::from_utf8_lossy(&sealed.body));
    let ciphertext = sealed.json()["ciphertext"].clone();
    let secret = json!({"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                        "ciphertext": ciphertext});
    let state = site_state(&srv, &org, secret);
    let r = c.post(&format!("{path}/import"), &state).await;
    assert!(r.status.is_success(), "import: {}", String::from_utf8_lossy(&r.body));

    let b = Browser::start().await;
    sign_in(&b, &srv).await;
    b.client.goto(&format!("{}/{org}/web/dev", srv.base)).await.expect("the stack's page");
    let outputs = b.text_until("main dl.outputs", |t| t.contains("dev.example.com")).await;
    assert!(outputs.contains("[secret]") && !outputs.contains("hunter2"), "{outputs}");
    b.find("main dl.outputs button[aria-label='Show password']").await.click().await.expect("show");
    b.text_until("main dl.outputs", |t| t.contains("hunter2")).await;

    // The tree: the bucket inside the component inside the stack, each opened in turn.
    b.text_until("main", |t| t.contains("3 resources")).await;
    let mut level = "ul.tree > li > details".to_string();
    for expected in
        ["pulumi:pulumi:Stack web-dev", "my:site:Site site", "aws:s3/bucket:Bucket site-bucket"]
    {
        let summary = b.find(&format!("{level} > summary")).await;
        assert!(summary.text().await.expect("text").contains(expected), "{expected}");
        summary.click().await.expect("open it");
        level = format!("{level} > ul.tree > li > details");
    }
    b.text_until("main", |t| t.contains("arn:aws:s3:::site-bucket-1234")).await;

    b.find("main button.download").await.click().await.expect("download");
    let file = b.downloads.join("web-dev.json");
    let deadline = Instant::now() + WAIT;
    while !file.exists() {
        assert!(Instant::now() < deadline, "no download at {}", file.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
    let exported = c.get(&format!("{path}/export")).await.json();
    assert_eq!(saved, exported, "the file is the stack's export");
    b.close().await;
    srv.stop().await;
}

/// A token made in the console is shown once, works, is listed without its value, and stops
/// working when revoked there (after a second confirmation); an organization's token too.
pub async fn a_token_is_shown_once_then_revoked(target: Target) {
    let srv = TestServer::start(target).await;
    let b = Browser::start().await;
    sign_in(&b, &srv).await;
    b.click_link("Access tokens").await;
    b.text_until("main h1", |t| t == "Access tokens").await;
    let value = create_token(&b, "#token-description", "ci robot").await;
    let made = srv.client_with(Some(&value));
    assert_eq!(made.get("/api/user").await.status, 200, "the new token works");
    assert!(b.texts("main tbody td:first-child").await.contains(&"ci robot".to_string()));

    // Shown once: the page again lists it without the value.
    b.client.refresh().await.expect("reload");
    b.text_until("main tbody", |t| t.contains("ci robot")).await;
    assert!(!b.client.source().await.expect("source").contains(&value), "shown only once");

    revoke_token(&b, "ci robot").await;
    assert!(!b.texts("main tbody td:first-child").await.contains(&"ci robot".to_string()));
    assert_eq!(made.get("/api/user").await.status, 401, "revoked");

    // An organization's token, from its members page: the same, named.
    let org = srv.user.clone();
    b.client.goto(&format!("{}/{org}/members", srv.base)).await.expect("members");
    b.click_link("Organization tokens").await;
    b.text_until("main h1", |t| t == format!("Tokens of {org}")).await;
    let value = create_token(&b, "#token-name", "deploy-bot").await;
    let bot = srv.client_with(Some(&value));
    let members = format!("/api/orgs/{org}/members");
    assert_eq!(bot.get(&members).await.status, 200, "the organization's token works");
    revoke_token(&b, "deploy-bot").await;
    assert_eq!(bot.get(&members).await.status, 401, "revoked");
    b.close().await;
    srv.stop().await;
}

/// On an open tokens page: types `name` into the field `field`, creates the token and returns
/// the value the page shows (once).
async fn create_token(b: &Browser, field: &str, name: &str) -> String {
    b.type_into(field, name).await;
    b.find("main form button[type=submit]").await.click().await.expect("create");
    b.text_until("#new-token", |t| !t.is_empty()).await
}

/// On an open tokens page: revokes token `name`, confirming the second time, and waits for the
/// page to say so.
async fn revoke_token(b: &Browser, name: &str) {
    let revoke = format!("main button[aria-label='Revoke {name}']");
    b.find(&revoke).await.click().await.expect("revoke");
    b.find("main button.danger").await.click().await.expect("confirm");
    b.text_until("main [role=status]", |t| t.contains("Revoked")).await;
}

/// A member whose organization grants no stack by default sees only the stack shared with
/// them; another's stack is "not found" by its deep link, and an admin's page says which role
/// it needs.
pub async fn a_member_sees_only_the_stacks_they_may_read(target: Target) {
    let srv = TestServer::start(target).await;
    let (admin, org) = (srv.client(), srv.user.clone());
    stack(&admin, &org, "web", "dev", json!({})).await;
    stack(&admin, &org, "api", "prod", json!({})).await;
    let orgs = format!("/api/orgs/{org}");
    let member = srv.other_user("bob-console").await;
    let r = admin.post(&format!("{orgs}/members/bob-console"), &json!({"role": "member"})).await;
    assert_eq!(r.status, 204, "add bob");
    let r = admin.patch(&orgs, &json!({"defaultStackPermission": "none"})).await;
    assert_eq!(r.status, 204, "no stack by default");
    let grant = json!({"name": "bob-console", "permission": 101});
    let r = admin.post(&format!("/api/stacks/{org}/web/dev/collaborators"), &grant).await;
    assert_eq!(r.status, 204, "bob may read web/dev");
    let made = member.post("/api/user/tokens", &json!({"description": "browser"})).await;
    let bob_token = made.json()["tokenValue"].as_str().expect("a token").to_string();

    let b = Browser::start().await;
    b.client.goto(&format!("{}/", srv.base)).await.expect("open the console");
    b.type_into("#token", &bob_token).await;
    b.find("form.signin button[type=submit]").await.click().await.expect("submit");
    b.text_until("main h1", |t| t == "Organizations").await;
    b.client.goto(&format!("{}/{org}", srv.base)).await.expect("the organization");
    b.text_until("main [role=status]", |t| t == "1 of 1 stacks").await;
    assert_eq!(b.texts("main tbody tr td:first-child").await, ["dev"]);
    b.client.goto(&format!("{}/{org}/api/prod", srv.base)).await.expect("another's stack");
    b.text_until("main .error", |t| t.contains("Not found")).await;
    b.client.goto(&format!("{}/{org}/audit", srv.base)).await.expect("the audit log");
    b.text_until("main .error", |t| t.contains("admin role")).await;
    b.client.goto(&format!("{}/{org}/members", srv.base)).await.expect("members");
    b.text_until("main tbody", |t| t.contains("bob-console") && t.contains("admin")).await;
    b.close().await;
    srv.stop().await;
}

/// Every page of the console — sign-in, organizations, stacks, a stack, an update, personal,
/// organization and team tokens, members, audit log, resources, environments, an environment,
/// deployments, policies, webhooks, a webhook's deliveries — in the light scheme at 1280 and 360
/// pixels and in the dark one at 1280, has no serious or critical axe-core violation, at 1280 and at 360
/// /// pixels wide, where nothing makes the page scroll sideways (wide tables scroll in their own
/// box). Each page's screenshot is saved (`target/console-screenshots`).
pub async fn every_page_passes_axe_at_two_widths(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    stack(&c, &org, "web", "dev", json!({"team": "frontend"})).await;
    stack(&c, &org, "api", "prod", json!({})).await;
    let prod = format!("/api/stacks/{org}/api/prod");
    crate::session::up(&c, &prod, &crate::fixtures::events("up"), &[]).await;
    let envs = format!("/api/esc/environments/{org}");
    assert_eq!(c.post(&envs, &json!({"project": "app", "name": "dev"})).await.status, 200);
    let definition = "values:\n  region: us-west-2\n  password:\n    fn::secret: hunter2\n";
    let r = c
        .send(http::Method::PATCH, &format!("{envs}/app/dev"), Some(definition.into()), false)
        .await;
    assert!(r.status.is_success(), "define it: {}", String::from_utf8_lossy(&r.body));
    let hook = json!({"organizationName": org, "displayName": "chat", "name": "chat",
                      "payloadUrl": "https://hooks.invalid/chat", "active": true});
    let r = c.post(&format!("/api/orgs/{org}/hooks"), &hook).await;
    assert!(r.status.is_success(), "a webhook: {}", String::from_utf8_lossy(&r.body));
    let r = c.post(&format!("/api/orgs/{org}/hooks/chat/ping"), &json!({})).await;
    assert!(r.status.is_success(), "ping: {}", String::from_utf8_lossy(&r.body));
    let team = json!({"name": "ops", "displayName": "Ops", "description": "on call"});
    assert_eq!(c.post(&format!("/api/orgs/{org}/teams/pulumi"), &team).await.status, 200);
    let pages: Vec<(&str, String, String)> = vec![
        ("signin", "/signin".into(), "Sign in to Stackhouse".into()),
        ("organizations", "/".into(), "Organizations".into()),
        ("stacks", format!("/{org}"), "Stacks".into()),
        ("stack", format!("/{org}/api/prod"), "prod".into()),
        ("update", format!("/{org}/api/prod/updates/1"), "Update 1".into()),
        ("tokens", "/account/tokens".into(), "Access tokens".into()),
        ("org-tokens", format!("/{org}/tokens"), format!("Tokens of {org}")),
        ("team-tokens", format!("/{org}/teams/ops/tokens"), "Tokens of team ops".into()),
        ("members", format!("/{org}/members"), "Members and teams".into()),
        ("audit", format!("/{org}/audit"), "Audit log".into()),
        ("resources", format!("/{org}/resources"), "Resources".into()),
        ("environments", format!("/{org}/environments"), "Environments".into()),
        ("environment", format!("/{org}/environments/app/dev"), "app/dev".into()),
        ("deployments", format!("/{org}/api/prod/deployments"), "Deployments".into()),
        ("policies", format!("/{org}/policies"), "Policies".into()),
        ("webhooks", format!("/{org}/webhooks"), "Webhooks".into()),
        ("webhook", format!("/{org}/webhooks/chat"), "chat".into()),
    ];
    let mut problems = Vec::new();
    let light = Browser::start().await;
    sign_in(&light, &srv).await;
    for (width, height) in [(1280, 900), (360, 780)] {
        check_pages(&light, &srv, &pages, (width, height), "", &mut problems).await;
    }
    light.close().await;
    // The system's dark scheme (the console follows it): the same checks, contrast included.
    let dark = Browser::start_with(&["--force-dark-mode"]).await;
    let scheme = "return matchMedia('(prefers-color-scheme: dark)').matches;";
    sign_in(&dark, &srv).await;
    assert_eq!(dark.client.execute(scheme, vec![]).await.expect("media"), json!(true));
    check_pages(&dark, &srv, &pages, (1280, 900), "-dark", &mut problems).await;
    dark.close().await;
    assert!(problems.is_empty(), "accessibility problems:\n{}", problems.join("\n"));
    srv.stop().await;
}

/// Sign in, open the organization, search for a stack, open it and its update, and sign out,
/// with the keyboard alone (Tab, typing, Enter).
pub async fn the_main_flow_by_keyboard_alone(target: Target) {
    use fantoccini::key::Key;
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    stack(&c, &org, "web", "dev", json!({})).await;
    stack(&c, &org, "api", "prod", json!({})).await;
    crate::session::up(
        &c,
        &format!("/api/stacks/{org}/api/prod"),
        &crate::fixtures::events("up"),
        &[],
    )
    .await;
    let b = Browser::start().await;
    b.client.goto(&format!("{}/", srv.base)).await.expect("open the console");
    b.find("form.signin").await;
    let field = tab_to(&b, "#token", "").await;
    field.send_keys(&format!("{}{}", srv.token, Key::Enter)).await.expect("type and submit");
    b.text_until("main h1", |t| t == "Organizations").await;
    tab_to(&b, "main a", &org).await.send_keys(&Key::Enter).await.expect("open");
    b.text_until("main h1", |t| t == "Stacks").await;
    tab_to(&b, "#stack-search", "").await.send_keys("prod").await.expect("search");
    b.text_until("main [role=status]", |t| t == "1 of 2 stacks").await;
    tab_to(&b, "main tbody a", "prod").await.send_keys(&Key::Enter).await.expect("open");
    b.text_until("main h1", |t| t == "prod").await;
    b.text_until("main tbody", |t| t.contains("succeeded")).await;
    tab_to(&b, "main tbody a", "1").await.send_keys(&Key::Enter).await.expect("open");
    b.text_until("main h1", |t| t == "Update 1").await;
    b.text_until("main [role=log]", |t| t.contains("Resources:")).await;
    tab_to(&b, "#account button", "Sign out").await.send_keys(&Key::Enter).await.expect("out");
    b.find("form.signin").await;
    b.close().await;
    srv.stop().await;
}

/// A state of stack `web/dev` of `org`: the stack (outputs `url` and `password`), a component
/// `site` and, inside it, a bucket.
fn site_state(srv: &TestServer, org: &str, password: Value) -> Value {
    let urn = |t: &str, n: &str| format!("urn:pulumi:dev::web::{t}::{n}");
    let root = urn("pulumi:pulumi:Stack", "web-dev");
    let site = urn("my:site:Site", "site");
    json!({"version": 3, "deployment": {
    "manifest": {"time": "2026-12-01T00:00:00Z", "magic": "", "version": "v3.276.0"},
    "secrets_providers": {"type": "service", "state": {"url": srv.base, "owner": org,
                                                       "project": "web", "stack": "dev"}},
    "resources": [
        {"urn": root, "custom": false, "type": "pulumi:pulumi:Stack",
         "outputs": {"url": "https://dev.example.com", "password": password}},
        {"urn": site, "custom": false, "type": "my:site:Site", "parent": root},
        {"urn": urn("my:site:Site$aws:s3/bucket:Bucket", "site-bucket"), "custom": true,
         "id": "site-bucket-1234", "type": "aws:s3/bucket:Bucket", "parent": site,
         "inputs": {"acl": "private"}, "outputs": {"acl": "private", "arn": "arn:aws:s3:::site-bucket-1234"}}
    ]}})
}

/// The organization's other pages: resource search (with suggestions for the term being
/// typed), an environment (its values with secrets masked until shown; saving a broken
/// definition shows the checker's diagnostics and changes nothing), a deployment run started
/// from the console with its log, and the policies.
pub async fn resources_environments_deployments_and_policies(target: Target) {
    let srv = TestServer::start(target).await;
    let _indexing = srv.indexing();
    let _deploying = srv.deploying();
    let (c, org) = (srv.client(), srv.user.clone());
    stack(&c, &org, "web", "dev", json!({})).await;
    let path = format!("/api/stacks/{org}/web/dev");
    let r = c.post(&format!("{path}/import"), &site_state(&srv, &org, json!("plain"))).await;
    assert!(r.status.is_success(), "import: {}", String::from_utf8_lossy(&r.body));
    let indexed = format!("/api/orgs/{org}/search/resources?query=site-bucket");
    let deadline = Instant::now() + WAIT;
    while c.get(&indexed).await.json()["total"] != 1 {
        assert!(Instant::now() < deadline, "the bucket was never indexed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let envs = format!("/api/esc/environments/{org}");
    let r = c.post(&envs, &json!({"project": "app", "name": "dev"})).await;
    assert_eq!(r.status, 200, "create an environment: {}", String::from_utf8_lossy(&r.body));
    let definition = "values:\n  region: us-west-2\n  password:\n    fn::secret: hunter2\n";
    let r = c
        .send(http::Method::PATCH, &format!("{envs}/app/dev"), Some(definition.into()), false)
        .await;
    assert!(r.status.is_success(), "define it: {}", String::from_utf8_lossy(&r.body));
    let dir = std::env::temp_dir().join(format!("stackhouse-repo-{:016x}", rand::random::<u64>()));
    let repo = crate::git::repo_with(&dir, "main", &[("README.md", "no program\n")]);
    let settings = json!({
        "sourceContext": {"git": {"repoUrl": format!("file://{}", repo.display())}},
        "operationContext": {"preRunCommands": ["echo hello from the runner; exit 3"],
                             "options": {"skipInstallDependencies": true}}
    });
    assert_eq!(c.put(&format!("{path}/deployments/settings"), &settings).await.status, 200);

    let b = Browser::start().await;
    sign_in(&b, &srv).await;
    // Resources: suggestions, then a search.
    b.client.goto(&format!("{}/{org}/resources", srv.base)).await.expect("resources");
    b.text_until("main h1", |t| t == "Resources").await;
    b.type_into("#resource-query", "typ").await;
    let options = "return [...document.querySelectorAll('#resource-suggestions option')].map((o) => o.value);";
    let deadline = Instant::now() + WAIT;
    loop {
        let got = b.client.execute(options, vec![]).await.expect("options");
        if got.as_array().is_some_and(|o| o.iter().any(|v| v == "type:")) {
            break;
        }
        assert!(Instant::now() < deadline, "no suggestion of type: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.type_into("#resource-query", "type:aws:s3/bucket:Bucket\n").await;
    b.text_until("main [role=status]", |t| t.starts_with("1 resources match")).await;
    assert_eq!(b.texts("main tbody td:first-child").await, ["site-bucket"]);

    // An environment.
    b.client.goto(&format!("{}/{org}/environments", srv.base)).await.expect("environments");
    b.click_link("app/dev").await;
    b.text_until("main h1", |t| t == "app/dev").await;
    let values = b.text_until("main pre.values", |t| t.contains("us-west-2")).await;
    assert!(values.contains("[secret]") && !values.contains("hunter2"), "{values}");
    b.find("main button.quiet").await.click().await.expect("show secrets");
    b.text_until("main pre.values", |t| t.contains("hunter2")).await;
    b.type_into("#env-definition", "values:\n  broken: ${nowhere}\n").await;
    b.find("main form button[type=submit]").await.click().await.expect("save");
    b.text_until("main .diagnostics", |t| t.contains("nowhere")).await;
    let kept = c.get(&format!("{envs}/app/dev")).await;
    let kept = String::from_utf8_lossy(&kept.body);
    assert!(kept.contains("region: us-west-2") && !kept.contains("nowhere"), "unchanged: {kept}");

    // A deployment run from the stack's page.
    b.client.goto(&format!("{}/{org}/web/dev", srv.base)).await.expect("the stack");
    b.click_link("Deployments").await;
    b.text_until("main h1", |t| t == "Deployments").await;
    b.find("main form button[type=submit]").await.click().await.expect("run");
    b.text_until("main h1", |t| t == "Deployment").await;
    b.text_until("main [role=log]", |t| t.contains("hello from the runner")).await;
    b.text_until("main p[role=status]", |t| t.contains("ended")).await;
    b.text_until("main dl.facts", |t| t.contains("failed")).await;

    b.client.goto(&format!("{}/{org}/policies", srv.base)).await.expect("policies");
    b.text_until("main h1", |t| t == "Policies").await;
    b.close().await;
    srv.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The audit log narrows by event as you type and exports the same range as CSV (the file the
/// API's export answers).
pub async fn the_audit_log_filters_and_exports(target: Target) {
    let srv = TestServer::start(target).await;
    let (c, org) = (srv.client(), srv.user.clone());
    stack(&c, &org, "web", "dev", json!({})).await;
    stack(&c, &org, "api", "prod", json!({})).await;
    let tagged = c.patch(&format!("/api/stacks/{org}/api/prod/tags"), &json!({"team": "x"})).await;
    assert!(tagged.status.is_success());
    let b = Browser::start().await;
    sign_in(&b, &srv).await;
    b.client.goto(&format!("{}/{org}/audit", srv.base)).await.expect("the audit log");
    b.text_until("main h1", |t| t == "Audit log").await;
    b.text_until("main tbody", |t| t.contains("stack-tags-update")).await;
    b.type_into("#audit-event", "stack-create").await;
    b.text_until("main [role=status]", |t| t.starts_with("2 of ")).await;
    let events = b.texts("main tbody td:nth-child(3)").await;
    assert_eq!(events, ["stack-create", "stack-create"], "only what the filter names");

    b.find("main button:not(.quiet)").await.click().await.expect("export");
    let file = b.downloads.join(format!("audit-{org}.csv"));
    let deadline = Instant::now() + WAIT;
    while !file.exists() {
        assert!(Instant::now() < deadline, "no CSV at {}", file.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let csv = std::fs::read_to_string(&file).expect("read the CSV");
    assert!(csv.starts_with("timestamp,sourceIP,event,"), "{csv}");
    assert!(csv.contains("stack-tags-update") && csv.contains("stack-create"), "{csv}");
    b.close().await;
    srv.stop().await;
}
