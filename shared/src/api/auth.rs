//! Authentication of the `Authorization` header against stored token hashes.

use std::collections::HashMap;

use http::{header, HeaderMap};

use super::{Auth, Permission, Route};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::UpdateId;
use crate::names::{OrgName, ProjectName, StackName, StackRef};
use crate::service::access::{OrgAccess, StackPermission};
use crate::service::environments::access as env_access;
use crate::service::environments::{self, EnvRef, Environment};
use crate::service::identity::{self, Caller};
use crate::service::stacks::{self, Stack};
use crate::service::updates;

/// Authenticates a request for a route's [`Auth`] mode.
pub async fn authenticate(
    app: &App,
    mode: Auth,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Caller> {
    match mode {
        Auth::Public => Ok(Caller::Anonymous),
        Auth::User => {
            let token = credential(headers, "token")?;
            identity::authenticate_token(app.ports.meta.as_ref(), token, app.clock.now()).await
        }
        Auth::Lease | Auth::LeaseAnyState => {
            let token = credential(headers, "update-token")?;
            let path = stack_ref(params)?;
            let update_id = params
                .get("update")
                .ok_or_else(|| Error::internal("lease route without {update}"))?;
            // A malformed id cannot be the one the token names: refused like a wrong token.
            let update_id = UpdateId::parse(update_id).map_err(|_| updates::lease_refused())?;
            let update =
                updates::authenticate_lease(app, token, &path, &update_id, mode == Auth::Lease)
                    .await?;
            Ok(Caller::Lease(Box::new(update)))
        }
    }
}

/// Requires an operator's access token: an organization access token with admin rights, or a
/// personal token of a user who administers at least one organization (401 without a token,
/// 403 with another). For `GET /api/health?deep=true`, whose shallow form is public.
pub async fn require_operator(app: &App, headers: &HeaderMap) -> Result<()> {
    use identity::{Role, Subject};
    let token = credential(headers, "token")?;
    let meta = app.ports.meta.as_ref();
    let caller = identity::authenticate_token(meta, token, app.clock.now()).await?;
    let operator = match &caller.principal()?.subject {
        Subject::Org { admin, .. } => *admin,
        Subject::User(user) => {
            identity::user_orgs(meta, user).await?.iter().any(|(_, role)| *role == Role::Admin)
        }
        Subject::Team { .. } => false,
    };
    match operator {
        true => Ok(()),
        false => Err(Error::Forbidden("the deep health check needs an organization admin".into())),
    }
}

/// What authorization read on the way, handed to the handler so it does not read it again.
#[derive(Debug, Default)]
pub struct Authorized {
    /// The path's stack (stack-permission routes).
    pub stack: Option<Stack>,
    /// The path's environment (environment-permission routes).
    pub environment: Option<Environment>,
    /// The caller's standing in the path's organization (every organization route).
    pub access: Option<OrgAccess>,
}

/// Checks that an authenticated caller holds the route's declared [`Permission`] and returns
/// what it read (handed to the handler): the one
/// authorisation check of the API. Non-members of an existing organization get 403; a stack
/// the caller may not even read is reported missing (404), as in Pulumi Cloud, so names do not
/// leak; a stack they may read but not change gets 403.
pub async fn authorize(
    app: &App,
    route: &Route,
    caller: &Caller,
    params: &HashMap<String, String>,
) -> Result<Authorized> {
    let meta = app.ports.meta.as_ref();
    let scope = match caller {
        Caller::Token(p) => p.deployment.as_ref(),
        _ => None,
    };
    if let Some(scope) = scope {
        within_deployment(route, scope, params)?;
    }
    let required = match route.permission() {
        Permission::Public | Permission::Lease => return Ok(Authorized::default()),
        Permission::Token => {
            caller.principal()?;
            return Ok(Authorized::default());
        }
        Permission::Runner => {
            let own = caller.principal()?.deployment.as_ref().map(|d| d.id.as_str());
            if own.is_none() || own != params.get("deployment").map(String::as_str) {
                return Err(Error::Forbidden(
                    "only the deployment's own runner, with its token, may do this".into(),
                ));
            }
            return Ok(Authorized::default());
        }
        Permission::OrgMember | Permission::OrgAdmin | Permission::Environment(_) => None,
        Permission::Stack(p) => Some(p),
    };
    let principal = caller.principal()?;
    let org = OrgName::parse(
        params.get("org").ok_or_else(|| Error::internal("org route without {org}"))?,
    )?;
    let mut access = OrgAccess::resolve(meta, principal, org.as_str()).await?;
    access.require_member()?;
    let Some(required) = required else {
        return match route.permission() {
            Permission::OrgAdmin => {
                access.require_admin()?;
                Ok(Authorized { access: Some(access), ..Default::default() })
            }
            Permission::Environment(p) => {
                let env = environments::get(meta, &env_ref(params)?).await?;
                env_access::require(meta, &access, &env, p).await?;
                Ok(Authorized { environment: Some(env), access: Some(access), stack: None })
            }
            _ => Ok(Authorized { access: Some(access), ..Default::default() }),
        };
    };
    let r = stack_ref(params)?;
    let stack = stacks::get(meta, &r).await?;
    if scope.is_some_and(|s| s.stack_id != stack.id.as_str()) {
        return Err(stacks::not_found(&r));
    }
    let held = access.stack_permission(meta, &stack, required).await?;
    if held == StackPermission::None {
        return Err(stacks::not_found(&r));
    }
    if held < required {
        return Err(Error::Forbidden(format!(
            "this needs {} permission on stack '{r}'; you have {}",
            required.as_str(),
            held.as_str()
        )));
    }
    Ok(Authorized { stack: Some(stack), access: Some(access), environment: None })
}

/// Routes a deployment's token may call beyond its stack's (and its runner's): who am I, what
/// the server can do, whether its project exists (`pulumi stack select`).
const DEPLOYMENT_TOKEN_ROUTES: &[&str] =
    &["user-get", "user-default-org", "capabilities-get", "project-head"];

/// What a deployment's token reaches: its stack (stack routes check the id once the stack is
/// read), the environments of its organization the program opens (as the requester may), and
/// the routes above; never another organization-wide route (its event stream, its other
/// stacks' listings), an administrator's route, or a listing of the user's stacks.
fn within_deployment(
    route: &Route,
    scope: &identity::DeploymentScope,
    params: &HashMap<String, String>,
) -> Result<()> {
    let refused = || {
        Error::Forbidden(format!(
            "a deployment's token reaches only its own stack; {} is out of its reach",
            route.name
        ))
    };
    match route.permission() {
        Permission::Public | Permission::Lease | Permission::Runner => Ok(()),
        Permission::Token | Permission::OrgMember
            if DEPLOYMENT_TOKEN_ROUTES.contains(&route.name) =>
        {
            match params.get("org") {
                Some(org) if *org != scope.org => Err(refused()),
                _ => Ok(()),
            }
        }
        Permission::Token | Permission::OrgMember | Permission::OrgAdmin => Err(refused()),
        Permission::Environment(_) | Permission::Stack(_) => match params.get("org") {
            Some(org) if *org == scope.org => Ok(()),
            _ => Err(refused()),
        },
    }
}

fn path_param<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| Error::internal(format!("route without {{{name}}}")))
}

/// The environment named by the `{org}/{project}/{env}` path parameters, validated.
pub fn env_ref(params: &HashMap<String, String>) -> Result<EnvRef> {
    let get = |name: &str| path_param(params, name);
    EnvRef::parse(get("org")?, get("project")?, get("env")?)
}

/// The stack named by the `{org}/{project}/{stack}` path parameters, validated.
pub fn stack_ref(params: &HashMap<String, String>) -> Result<StackRef> {
    let get = |name: &str| path_param(params, name);
    Ok(StackRef {
        org: OrgName::parse(get("org")?)?,
        project: ProjectName::parse(get("project")?)?,
        stack: StackName::parse(get("stack")?)?,
    })
}

/// The lease token of an `update-token` request (for renewals, which return it).
pub fn lease_token(headers: &HeaderMap) -> Result<&str> {
    credential(headers, "update-token")
}

/// Extracts `<scheme> <credential>` from the Authorization header.
pub(crate) fn credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Result<&'a str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("no access token provided; run `pulumi login`".into()))?
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    let (given_scheme, cred) = value.trim().split_once(' ').unwrap_or((value, ""));
    let cred = cred.trim();
    if !given_scheme.eq_ignore_ascii_case(scheme) || cred.is_empty() {
        return Err(Error::Unauthorized(format!(
            "expected `Authorization: {scheme} <credential>`"
        )));
    }
    Ok(cred)
}
