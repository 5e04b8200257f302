//! Pulumi Deployments routes (Pulumi Cloud's `deployments` group): a stack's deployment
//! settings under `/api/stacks/{org}/{project}/{stack}/deployments/settings`, its runs under
//! `…/deployments`, and the routes of a run's runner under `/api/deployments/{deployment}`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::service::access::{OrgAccess, StackPermission};
use crate::service::deploy::runs::{self, Status};
use crate::service::deploy::{dispatch, report};

use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::deploy::secret::Value;
use crate::service::deploy::settings::{self, Change, Versioned};

/// `GET …/deployments/settings`: 404 when the stack has none.
pub async fn settings_get(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    match settings::get(&ctx.app, stack.id.as_str()).await? {
        Some(found) => Reply::json(&found),
        None => Err(Error::NotFound(format!(
            "stack {}/{}/{} has no deployment settings",
            stack.org, stack.project, stack.stack
        ))),
    }
}

async fn change(ctx: Ctx, merge: bool) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let body: Json = ctx.json()?;
    let how = if merge { Change::Merge(&body) } else { Change::Replace(&body) };
    let stored: Versioned = settings::change(&ctx.app, stack.id.as_str(), how).await?;
    Reply::json(&stored)
}

/// `PUT …/deployments/settings`: the request is the whole settings.
pub async fn settings_replace(ctx: Ctx) -> Result<Reply> {
    change(ctx, false).await
}

/// `POST …/deployments/settings`: the request merges into the stored settings (objects merge,
/// other values replace, `null` removes); creates them when there are none.
pub async fn settings_merge(ctx: Ctx) -> Result<Reply> {
    change(ctx, true).await
}

/// `DELETE …/deployments/settings`: `true` when there were settings, `false` when not.
pub async fn settings_delete(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    Reply::json(&settings::delete(&ctx.app, stack.id.as_str()).await?)
}

/// `POST …/deployments/settings/encrypt` with `{"secret": plaintext}`: the stack's ciphertext,
/// to put in settings later (`{"ciphertext": …}`).
pub async fn settings_encrypt(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let mut value: Value = ctx.json()?;
    match &value {
        Value::Unsealed(p) if p.is_empty() => {
            return Err(Error::BadRequest("Invalid empty value".into()))
        }
        Value::Unsealed(_) => {}
        _ => return Err(Error::BadRequest("send the plaintext as {\"secret\": …}".into())),
    }
    value.seal(&ctx.app, stack.id.as_str()).await?;
    Reply::json(&value)
}

/// `CreateDeploymentRequest` (read by [`runs::Request::parse`]; this type describes it).
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct CreateRequest {
    operation: crate::service::deploy::Operation,
    /// Start from the stack's settings (the default) and merge this request's into them.
    inherit_settings: Option<bool>,
    #[serde(flatten)]
    settings: crate::service::deploy::settings::Settings,
}

/// `CreateDeploymentResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Created {
    id: String,
    /// No console yet (issue 22): empty.
    console_url: String,
    version: i64,
}

/// `POST …/deployments`: creates a run of the operation with the stack's settings (and the
/// request's merged in, or only the request's with `inheritSettings: false`); 202, queued.
pub async fn create(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let req = runs::Request::parse(ctx.json()?)?;
    let run = runs::create(&ctx.app, &stack, ctx.caller.principal()?, req).await?;
    Reply::json_status(
        http::StatusCode::ACCEPTED,
        &Created { id: run.id, console_url: String::new(), version: run.version },
    )
}

/// `UserInfo` of the requester (a login; no profile details are kept for a run).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Requester {
    name: String,
    github_login: String,
    avatar_url: String,
}

/// `DeploymentJob`: a run is one job.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Job {
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_updated: Option<String>,
    steps: Vec<Json>,
}

/// `GetDeploymentResponse` (and, with the stack's names, `ListDeploymentSnapshot`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Deployment {
    id: String,
    created: String,
    modified: String,
    status: Status,
    version: i64,
    requested_by: Requester,
    jobs: Vec<Job>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_version: Option<i64>,
    initiator: &'static str,
    pulumi_operation: crate::service::deploy::Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack_name: Option<String>,
    /// Why it failed (ours).
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// In a list: whether the stack's deployments are paused (pausing is not served yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    paused: Option<bool>,
    /// A single run: its environment (secrets without their values) and source.
    #[serde(skip_serializing_if = "Option::is_none")]
    configuration: Option<Configuration>,
}

/// `DeploymentConfiguration`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Configuration {
    environment_variables: Vec<Variable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
}

/// `EnvironmentVariable`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Variable {
    name: String,
    /// Empty for a secret.
    value: String,
    secret: bool,
}

/// `DeploymentSource`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Source {
    git: SourceGit,
}

/// `DeploymentSourceGit`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct SourceGit {
    #[serde(rename = "repoURL")]
    repo_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<String>,
}

fn configuration(run: &runs::Run) -> Result<Configuration> {
    let s = run.settings()?;
    let vars = s.operation_context.and_then(|o| o.environment_variables).unwrap_or_default();
    let environment_variables = vars
        .into_iter()
        .map(|(name, v)| match v {
            Value::Plain(value) => Variable { name, value, secret: false },
            _ => Variable { name, value: String::new(), secret: true },
        })
        .collect();
    let source = s.source_context.and_then(|c| c.git).map(|g| Source {
        git: SourceGit {
            repo_url: g.repo_url.unwrap_or_default(),
            branch: g.branch.or(g.tag),
            repo_dir: g.repo_dir,
            commit: g.commit,
        },
    });
    Ok(Configuration { environment_variables, source })
}

fn time(secs: i64) -> String {
    crate::service::environments::rfc3339(secs)
}

/// A run as answered; `paused` (its stack's deployments are) only in lists, which also name
/// its stack.
fn view(run: &runs::Run, latest: Option<i64>, paused: Option<bool>) -> Deployment {
    let names = paused.is_some();
    Deployment {
        id: run.id.clone(),
        created: time(run.created),
        modified: time(run.modified),
        status: run.status,
        version: run.version,
        requested_by: Requester {
            name: run.requested_by.clone(),
            github_login: run.requested_by.clone(),
            avatar_url: String::new(),
        },
        jobs: vec![Job {
            status: run.status,
            started: run.started.map(time),
            last_updated: Some(time(run.modified)),
            steps: Vec::new(),
        }],
        latest_version: latest,
        initiator: "api",
        pulumi_operation: run.operation,
        project_name: names.then(|| run.project.clone()),
        stack_name: names.then(|| run.stack.clone()),
        message: run.message.clone(),
        paused,
        configuration: None,
    }
}

/// `GET …/deployments/{deployment}`.
pub async fn get(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let meta = ctx.app.ports.meta.as_ref();
    let run = runs::get_of(meta, &stack, ctx.param("deployment")?).await?;
    let (_, latest) = runs::list_stack(meta, stack.id.as_str(), 1, 0, false).await?;
    let mut found = view(&run, Some(latest as i64), None);
    found.configuration = Some(configuration(&run)?);
    Reply::json(&found)
}

/// `ListDeploymentResponseV2`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct DeploymentList {
    deployments: Vec<Deployment>,
    items_per_page: usize,
    total: usize,
}

/// `page` (1-based), `pageSize` (1–100, 10 unless given) and `asc`.
pub(super) fn paging(ctx: &Ctx) -> Result<(usize, usize, bool)> {
    let number = |key: &str, default: usize, max: usize| -> Result<usize> {
        match ctx.query(key) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| Error::BadRequest(format!("{key} is a number from 1 to {max}"))),
        }
    };
    let asc = matches!(ctx.query("asc"), Some("true"));
    Ok((number("page", 1, 1_000_000)?, number("pageSize", 10, 100)?, asc))
}

/// `GET …/deployments?page=&pageSize=&asc=`: the stack's runs, newest first.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let (page, size, asc) = paging(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let (found, total) = runs::list_stack(meta, stack.id.as_str(), page, size, asc).await?;
    let paused = dispatch::paused(meta, &stack.org, stack.id.as_str()).await?.any();
    Reply::json(&DeploymentList {
        deployments: found.iter().map(|r| view(r, None, Some(paused))).collect(),
        items_per_page: size,
        total,
    })
}

/// `GET /api/orgs/{org}/deployments`: the organization's runs, newest first.
pub async fn org_list(ctx: Ctx) -> Result<Reply> {
    let org = super::path_org(&ctx)?;
    let (page, size, asc) = paging(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let (found, total) = runs::list_org(meta, org.as_str(), page, size, asc).await?;
    let mut deployments = Vec::with_capacity(found.len());
    let mut known: std::collections::HashMap<String, bool> = Default::default();
    for r in &found {
        let paused = match known.get(&r.stack_id) {
            Some(p) => *p,
            None => {
                let p = dispatch::paused(meta, &r.org, &r.stack_id).await?.any();
                known.insert(r.stack_id.clone(), p);
                p
            }
        };
        deployments.push(view(r, None, Some(paused)));
    }
    Reply::json(&DeploymentList { deployments, items_per_page: size, total })
}

/// `DeploymentLogs`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Logs {
    #[serde(rename = "__type")]
    kind: &'static str,
    lines: Vec<report::LogLine>,
    /// Ask again with this for what comes next; absent once the run has ended and all was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// `GET …/deployments/{deployment}/logs?continuationToken=`: the log as streamed so far.
pub async fn logs(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let meta = ctx.app.ports.meta.as_ref();
    let run = runs::get_of(meta, &stack, ctx.param("deployment")?).await?;
    let after = match ctx.query("continuationToken") {
        None | Some("") => None,
        Some(t) => Some(t.parse::<u32>().map_err(|_| {
            Error::BadRequest("continuationToken is the nextToken of an earlier answer".into())
        })?),
    };
    let (lines, next_token) = report::logs(meta, &run, after).await?;
    Reply::json(&Logs { kind: "DeploymentLogs", lines, next_token })
}

/// `POST …/deployments/{deployment}/cancel`.
pub async fn cancel(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let run = runs::get_of(ctx.app.ports.meta.as_ref(), &stack, ctx.param("deployment")?).await?;
    runs::cancel(&ctx.app, &run).await?;
    Ok(Reply::no_content())
}

/// `GET /api/deployments/{deployment}/status`: the status alone, for whoever may read the
/// run's stack.
pub async fn status(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let id = ctx.param("deployment")?;
    let run = runs::get(meta, id).await?;
    let principal = ctx.caller.principal()?;
    let mut access = OrgAccess::resolve(meta, principal, &run.org).await?;
    let held =
        access.stack_permission_by_id(meta, &run.stack_id, None, StackPermission::Read).await?;
    if held == StackPermission::None {
        return Err(Error::NotFound(format!("deployment {id} not found")));
    }
    Reply::json(&run.status)
}

/// `POST /api/deployments/{deployment}/runner/claim` (the run's runner): `running`, and what
/// to run.
pub async fn runner_claim(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let run = report::of_runner(meta, ctx.caller.principal()?, ctx.param("deployment")?).await?;
    Reply::json(&report::claim(&ctx.app, &run).await?)
}

/// What the runner sends of its log.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct LogChunk {
    /// The runner's count of chunks sent before this one.
    chunk: u32,
    #[serde(default)]
    lines: Vec<report::LogLine>,
}

/// The answer to a chunk.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct LogAnswer {
    /// Stop: the run was cancelled.
    cancel: bool,
}

/// `POST /api/deployments/{deployment}/runner/logs` (the run's runner): a chunk of its log,
/// and its heartbeat.
pub async fn runner_logs(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let run = report::of_runner(meta, ctx.caller.principal()?, ctx.param("deployment")?).await?;
    let chunk: LogChunk = ctx.json()?;
    let cancel = report::append(&ctx.app, &run, chunk.chunk, chunk.lines).await?;
    Reply::json(&LogAnswer { cancel })
}

/// How the run ended, as its runner says.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Ended {
    succeeded: bool,
    #[serde(default)]
    message: String,
}

/// `POST /api/deployments/{deployment}/runner/complete` (the run's runner).
pub async fn runner_complete(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let run = report::of_runner(meta, ctx.caller.principal()?, ctx.param("deployment")?).await?;
    let ended: Ended = ctx.json()?;
    report::complete(&ctx.app, &run, ended.succeeded, &ended.message).await?;
    Ok(Reply::no_content())
}

/// `UpdateInfo` of an update a run made.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RunUpdate {
    info: Json,
    #[serde(rename = "updateID")]
    update_id: String,
    version: i64,
    latest_version: i64,
    requested_by: Requester,
}

/// `GET …/deployments/{deployment}/updates`: the updates the run made, oldest first.
pub async fn updates(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let meta = ctx.app.ports.meta.as_ref();
    let run = runs::get_of(meta, &stack, ctx.param("deployment")?).await?;
    let made = runs::updates(meta, &run).await?;
    let out: Vec<RunUpdate> = made
        .into_iter()
        .map(|e| RunUpdate {
            info: e.info,
            update_id: e.update_id.unwrap_or_default(),
            version: e.version,
            latest_version: stack.version,
            requested_by: Requester {
                name: run.requested_by.clone(),
                github_login: run.requested_by.clone(),
                avatar_url: String::new(),
            },
        })
        .collect();
    Reply::json(&out)
}

/// `POST …/deployments/pause`: queued runs of the stack wait until it is resumed.
pub async fn pause(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    dispatch::set_paused(&ctx.app, dispatch::PauseScope::Stack(stack.id.as_str()), true).await?;
    Ok(Reply::no_content())
}

/// `POST …/deployments/resume`.
pub async fn resume(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    dispatch::set_paused(&ctx.app, dispatch::PauseScope::Stack(stack.id.as_str()), false).await?;
    Ok(Reply::no_content())
}

/// `POST /api/orgs/{org}/deployments/pause`: every stack's queued runs wait.
pub async fn org_pause(ctx: Ctx) -> Result<Reply> {
    let org = super::path_org(&ctx)?;
    dispatch::set_paused(&ctx.app, dispatch::PauseScope::Org(org.as_str()), true).await?;
    Ok(Reply::no_content())
}

/// `POST /api/orgs/{org}/deployments/resume`.
pub async fn org_resume(ctx: Ctx) -> Result<Reply> {
    let org = super::path_org(&ctx)?;
    dispatch::set_paused(&ctx.app, dispatch::PauseScope::Org(org.as_str()), false).await?;
    Ok(Reply::no_content())
}

/// `StackDeploymentsMetadataResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct StackMetadata {
    paused: bool,
    stack_paused: bool,
    organization_paused: bool,
    has_schedules: bool,
    drift: super::drift::DriftStatus,
}

/// `GET …/deployments/metadata`.
pub async fn metadata(ctx: Ctx) -> Result<Reply> {
    let stack = ctx.stack().await?;
    let p = dispatch::paused(ctx.app.ports.meta.as_ref(), &stack.org, stack.id.as_str()).await?;
    Reply::json(&StackMetadata {
        paused: p.any(),
        stack_paused: p.stack,
        organization_paused: p.org,
        has_schedules: super::schedules::any(&ctx, &stack).await?,
        drift: super::drift::status_of(&ctx, stack.id.as_str()).await?,
    })
}
