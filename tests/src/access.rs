//! The permission matrix: every route of the table called by every kind of caller, with the
//! status each must get, derived from the route's declared permission. New routes are covered
//! without touching this file.
//!
//! A [`World`] is one organization with an admin, a member without grants, a reader and a
//! writer (through teams), a stack admin (a collaborator), an outsider from another
//! organization, members' default stack and environment permissions `none`, one stack with a
//! resource, and one deletion-protected environment the reader's and writer's teams may read
//! and write.

use reqwest::Method;
use serde_json::{json, Value};
use stackhouse::api::{routes, Auth, Permission, Route};
use stackhouse::names::{OrgName, ProjectName, StackName, StackRef, TeamName, UserName};
use stackhouse::service::access::StackPermission;
use stackhouse::service::environments::access::{self as env_access, EnvPermission};
use stackhouse::service::environments::{self, EnvRef};
use stackhouse::service::identity::{self, Role};
use stackhouse::service::{members, stacks, teams};

use crate::server::{Client, Reply, TestServer};

/// The callers of the matrix, least privileged first: calls that change something run in this
/// order, so a lesser caller never finds the world changed by a greater one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    /// Member of another organization only.
    Outsider,
    /// Member without any grant (default permission is none).
    Member,
    /// Read on the stack, through a team.
    Reader,
    /// Write on the stack, through a team.
    Writer,
    /// Admin on the stack, as a collaborator.
    StackAdmin,
    /// Admin of the organization.
    OrgAdmin,
}

/// Every caller, least privileged first.
pub const CALLERS: [Caller; 6] = [
    Caller::Outsider,
    Caller::Member,
    Caller::Reader,
    Caller::Writer,
    Caller::StackAdmin,
    Caller::OrgAdmin,
];

impl Caller {
    fn stack_permission(self) -> StackPermission {
        match self {
            Caller::Outsider | Caller::Member => StackPermission::None,
            Caller::Reader => StackPermission::Read,
            Caller::Writer => StackPermission::Write,
            Caller::StackAdmin | Caller::OrgAdmin => StackPermission::Admin,
        }
    }

    fn env_permission(self) -> EnvPermission {
        match self {
            Caller::Outsider | Caller::Member | Caller::StackAdmin => EnvPermission::None,
            Caller::Reader => EnvPermission::Read,
            Caller::Writer => EnvPermission::Write,
            Caller::OrgAdmin => EnvPermission::Admin,
        }
    }
}

/// What a caller must get from a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Let through to the handler (whatever it then answers, never 401/403 or a hidden stack).
    Allowed,
    /// Refused with this status.
    Refused(u16),
}

/// The expected outcome of `caller` on `route`, from the route's declared permission.
pub fn expected(route: &Route, caller: Caller) -> Expect {
    let member = caller != Caller::Outsider;
    match route.permission() {
        Permission::Public | Permission::Token => Expect::Allowed,
        // Access tokens are the wrong credential for lease routes.
        Permission::Lease => Expect::Refused(401),
        // Only the deployment's runner holds its token; no caller of the matrix does.
        Permission::Runner => Expect::Refused(403),
        Permission::OrgMember if member => Expect::Allowed,
        Permission::OrgAdmin if caller == Caller::OrgAdmin => Expect::Allowed,
        // Outsiders learn nothing, not even that the organization exists.
        Permission::OrgMember | Permission::OrgAdmin if !member => Expect::Refused(404),
        Permission::OrgMember | Permission::OrgAdmin => Expect::Refused(403),
        Permission::Stack(_) if !member => Expect::Refused(404),
        Permission::Stack(_) if caller.stack_permission() == StackPermission::None => {
            Expect::Refused(404)
        }
        Permission::Stack(needed) if caller.stack_permission() >= needed => Expect::Allowed,
        Permission::Stack(_) => Expect::Refused(403),
        Permission::Environment(_) if !member => Expect::Refused(404),
        Permission::Environment(_) if caller.env_permission() == EnvPermission::None => {
            Expect::Refused(404)
        }
        Permission::Environment(needed) if caller.env_permission() >= needed => Expect::Allowed,
        Permission::Environment(_) => Expect::Refused(403),
    }
}

/// The world's environment (in the stack's project).
const ENV: &str = "matrix-env";

/// One organization with one caller of each kind and one stack.
pub struct World {
    /// Organization name.
    pub org: String,
    /// Project of the stack.
    pub project: String,
    /// The stack.
    pub stack: String,
    /// An update of the stack (the import).
    pub update: String,
    /// The member without grants (a user name routes can name).
    pub member: String,
    clients: Vec<(Caller, Client)>,
}

impl World {
    /// Builds a world named after `tag` (unique per server), through the services and the API.
    pub async fn build(srv: &TestServer, tag: &str) -> World {
        let meta = srv.app.ports.meta.as_ref();
        let now = srv.app.clock.now();
        let org = format!("org-{tag}");
        let mut clients = Vec::new();
        let mut names = std::collections::HashMap::new();
        for caller in CALLERS {
            let user = format!("{tag}-{caller:?}").to_lowercase();
            let token = format!("pul-{:040x}", rand::random::<u128>());
            let home = if caller == Caller::OrgAdmin { org.clone() } else { user.clone() };
            identity::ensure_identity(meta, &user, &home, Some((&token, "matrix")), now)
                .await
                .expect("user");
            if !matches!(caller, Caller::OrgAdmin | Caller::Outsider) {
                identity::add_member(meta, &org, &user, Role::Member, now).await.expect("member");
            }
            names.insert(caller, user);
            clients.push((caller, srv.client_with(Some(&token))));
        }
        members::set_default_permission(meta, &org, StackPermission::None).await.expect("default");
        env_access::set_org_default(meta, &org, EnvPermission::None).await.expect("env default");
        let r = StackRef {
            org: OrgName::parse(&org).expect("org"),
            project: ProjectName::parse("proj").expect("project"),
            stack: StackName::parse("dev").expect("stack"),
        };
        let admin = &names[&Caller::OrgAdmin];
        let stack =
            stacks::create(meta, &r, Default::default(), Some(admin)).await.expect("create stack");
        let admin_client = &clients.last().expect("admin").1;
        let imported = admin_client.post(&format!("/api/stacks/{r}/import"), &deployment()).await;
        assert_eq!(imported.status, 200, "import: {imported:?}");
        let update = imported.json()["updateId"].as_str().expect("updateId").to_string();
        for (team, caller, perm) in [
            ("readers", Caller::Reader, StackPermission::Read),
            ("writers", Caller::Writer, StackPermission::Write),
        ] {
            let name = TeamName::parse(team).expect("team");
            teams::create(meta, &org, &name, "", "", now).await.expect("team");
            let user = UserName::parse(&names[&caller]).expect("user");
            teams::add_member(meta, &org, team, &user, now).await.expect("team member");
            teams::set_stack_permission(meta, &org, team, &stack, perm).await.expect("grant");
        }
        let at = EnvRef::parse(&org, "proj", ENV).expect("environment name");
        let env = environments::create(&srv.app, &at, admin).await.expect("create environment");
        // Protected, so that the admin's DELETE in the matrix leaves it for the routes after.
        environments::set_protection(&srv.app, &at, true).await.expect("protect");
        for (team, perm) in [("readers", EnvPermission::Read), ("writers", EnvPermission::Write)] {
            env_access::set_team_permission(meta, team, &env, perm).await.expect("env grant");
        }
        let stack_admin = UserName::parse(&names[&Caller::StackAdmin]).expect("user");
        members::set_collaborator(meta, &stack, &stack_admin, StackPermission::Admin)
            .await
            .expect("collaborator");
        World {
            org,
            project: "proj".into(),
            stack: "dev".into(),
            update,
            member: names[&Caller::Member].clone(),
            clients,
        }
    }

    /// The client of a caller.
    pub fn client(&self, caller: Caller) -> &Client {
        &self.clients.iter().find(|(c, _)| *c == caller).expect("every caller has a client").1
    }

    /// The concrete path of a route in this world.
    pub fn path(&self, route: &Route) -> String {
        let mut path = route.path.to_string();
        for (param, value) in [
            ("org", self.org.as_str()),
            ("project", &self.project),
            ("stack", &self.stack),
            ("kind", "update"),
            ("update", &self.update),
            ("version", "1"),
            ("hook", "no-such-hook"),
            ("deployment", "0000000000-0000000000000000"),
            ("schedule", "00000000-0000-4000-0000-000000000000"),
            ("delivery", "0000000000-000000000000"),
            ("user", &self.member),
            ("team", "readers"),
            ("tokenId", "0000000000"),
            ("urn", "urn%3Apulumi%3Adev%3A%3Aproj%3A%3Apulumi%3Apulumi%3AStack%3A%3Aproj-dev"),
            ("env", ENV),
            ("revision", "1"),
            ("open", "00000000000000000000000000000000"),
            ("tag", "no-such-tag"),
            ("pack", "no-such-pack"),
            ("group", "no-such-group"),
            ("source", "private"),
            ("name", "no-such-template"),
            ("semver", "1.0.0"),
        ] {
            path = path.replace(&format!("{{{param}}}"), value);
        }
        assert!(!path.contains('{'), "{}: a path parameter the matrix does not fill", route.name);
        path
    }

    /// Calls a route as `caller` with a minimal body (`{}` where one is expected).
    pub async fn call(&self, route: &Route, caller: Caller) -> Reply {
        let method = Method::from_bytes(route.method.as_str().as_bytes()).expect("method");
        let body =
            matches!(route.method.as_str(), "POST" | "PATCH" | "PUT").then(|| b"{}".to_vec());
        self.client(caller).send(method, &self.path(route), body, false).await
    }

    /// Whether a 404 is the authorisation hiding the stack or organization (rather than the
    /// handler not finding a sub-resource such as a hook).
    pub fn is_hidden(&self, reply: &Reply) -> bool {
        if reply.status != 404 {
            return false;
        }
        let message = reply.error_message(404);
        message == format!("stack '{}/{}/{}' not found", self.org, self.project, self.stack)
            || message == format!("organization '{}' does not exist", self.org)
            || message == format!("environment {}/{}/{ENV} not found", self.org, self.project)
    }
}

/// A small deployment with one resource, so the stack cannot be deleted without `force`.
fn deployment() -> Value {
    json!({"version": 3, "deployment": {
        "manifest": {"time": "2025-03-12T19:03:59.042Z", "magic": "", "version": "v3.200.0"},
        "resources": [{"urn": "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev",
                       "custom": false, "type": "pulumi:pulumi:Stack"}]}})
}

/// Checks one route for every caller, least privileged first; returns what went wrong.
pub async fn check_route(route: &'static Route, world: &World) -> Vec<String> {
    let mut failures = Vec::new();
    for caller in CALLERS {
        let reply = world.call(route, caller).await;
        let want = expected(route, caller);
        let ok = match want {
            Expect::Allowed => {
                !matches!(reply.status.as_u16(), 401 | 403) && !world.is_hidden(&reply)
            }
            Expect::Refused(status) => reply.status.as_u16() == status,
        };
        if !ok {
            failures.push(format!(
                "{} {} as {caller:?}: expected {want:?}, got {} {}",
                route.method,
                route.name,
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
    }
    failures
}

/// The whole matrix: every route × every caller. Routes that only read share one world; each
/// route that can change something gets its own. `read_only` limits it to reading routes (the
/// slower AWS backend runs those).
pub async fn permission_matrix(srv: &TestServer, read_only: bool) {
    let shared = World::build(srv, "read").await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, route) in routes::ROUTES.iter().copied().enumerate() {
        let reads = matches!(route.method.as_str(), "GET" | "HEAD");
        if route.auth() == Auth::Public || (read_only && !reads) {
            continue;
        }
        let own;
        let world = if reads {
            &shared
        } else {
            own = World::build(srv, &format!("w{i}")).await;
            &own
        };
        failures.extend(check_route(route, world).await);
        checked += 1;
    }
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "{} permission failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Declares the matrix tests for one backend.
#[macro_export]
macro_rules! access_tests {
    ($target:expr, $read_only:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn permission_matrix_of_every_route_and_caller() {
            let srv = $crate::server::TestServer::start(($target)("matrix")).await;
            $crate::access::permission_matrix(&srv, $read_only).await;
        }
    };
}
