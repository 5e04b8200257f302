//! What a run's runner reports (the runner routes): it claims its run and learns what to
//! run, sends its log a chunk at a time (its heartbeat too), and says how the run ended —
//! which frees the stack's run slot and revokes the run's token. Also the log as read.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::runs::{
    get, run_pk, Run, Status, ACTIVE_SK, LIVE_PK, LOG_PREFIX, MAX_CHUNK_LINES, MAX_LINE, RUN_SK,
};
use super::spec::{GitCheckout, RunSpec};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Update, Value};
use crate::service::identity::Principal;
use crate::service::item_keys;

/// The run of the runner's token (403 for any other token).
pub async fn of_runner(meta: &dyn MetadataStore, caller: &Principal, id: &str) -> Result<Run> {
    let refused = || Error::Forbidden("only the deployment's own runner may do this".into());
    let scope = caller.deployment.as_ref().ok_or_else(refused)?;
    if scope.id != id {
        return Err(refused());
    }
    get(meta, id).await
}

/// The runner (its token checked by [`of_runner`]) claims its run: `running`, and what to run
/// (secrets opened; the runner adds the URL and token it holds). Idempotent.
pub async fn claim(app: &App, run: &Run) -> Result<RunSpec> {
    let meta = app.ports.meta.as_ref();
    match run.status {
        Status::Accepted => {
            let now = app.clock.now();
            let running =
                Run { status: Status::Running, modified: now, heartbeat: Some(now), ..run.clone() };
            let item = running.item();
            let cond =
                Condition::Equals("status".into(), Value::S(Status::Accepted.as_str().into()));
            match meta.put(item, Some(cond)).await {
                Ok(()) => {
                    super::notify::run_step(app, &running, super::notify::Step::Started, None).await
                }
                Err(MetaError::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Status::Running => {}
        _ => {
            return Err(Error::Conflict(format!(
                "deployment {} is {}",
                run.id,
                run.status.as_str()
            )))
        }
    }
    spec(app, run).await
}

async fn spec(app: &App, run: &Run) -> Result<RunSpec> {
    let s = run.settings()?;
    let sid = run.stack_id.as_str();
    let git = s.source_context.as_ref().and_then(|c| c.git.clone()).unwrap_or_default();
    let (mut username, mut password) = (None, None);
    if let Some(auth) = &git.git_auth {
        if let Some(t) = &auth.access_token {
            password = Some(t.0.reveal(app, sid).await?);
        }
        if let Some(b) = &auth.basic_auth {
            username = Some(b.user_name.0.reveal(app, sid).await?);
            password = Some(b.password.0.reveal(app, sid).await?);
        }
    }
    let op = s.operation_context.clone().unwrap_or_default();
    let mut environment = std::collections::BTreeMap::new();
    let mut secrets: Vec<String> = password.iter().cloned().collect();
    for (k, v) in op.environment_variables.iter().flatten() {
        let opened = v.reveal(app, sid).await?;
        if !matches!(v, super::secret::Value::Plain(_)) {
            secrets.push(opened.clone());
        }
        environment.insert(k.clone(), opened);
    }
    let options = op.options.clone().unwrap_or_default();
    Ok(RunSpec {
        id: run.id.clone(),
        version: run.version,
        // The runner knows the URL it reached us at and the token it holds.
        backend_url: String::new(),
        access_token: String::new(),
        org: run.org.clone(),
        project: run.project.clone(),
        stack: run.stack.clone(),
        operation: run.operation,
        source: GitCheckout {
            url: git.repo_url.clone().unwrap_or_default(),
            branch: git.branch.clone(),
            tag: git.tag.clone(),
            commit: git.commit.clone(),
            dir: git.repo_dir.clone(),
            username,
            password,
        },
        environment,
        pre_run_commands: op.pre_run_commands.clone().unwrap_or_default(),
        shell: options.shell.clone(),
        skip_install: options.skip_install_dependencies.unwrap_or(false),
        delete_after_destroy: options.delete_after_destroy.unwrap_or(false),
        secrets,
    })
}

/// One line of the log, as stored and shown (`DeploymentLogLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LogLine {
    #[serde(default)]
    pub header: String,
    /// RFC 3339 with milliseconds (in a chunk the runner sends: Unix milliseconds also do).
    pub timestamp: Json,
    #[serde(default)]
    pub line: String,
}

/// The runner sends a chunk of its log (`chunk`: its own count of chunks sent, so a retried
/// send stores nothing twice), which is also its heartbeat. Answers whether to cancel.
pub async fn append(app: &App, run: &Run, chunk: u32, lines: Vec<LogLine>) -> Result<bool> {
    if lines.len() > MAX_CHUNK_LINES {
        return Err(Error::BadRequest(format!("a chunk holds at most {MAX_CHUNK_LINES} lines")));
    }
    // Ended meanwhile (cancelled, or reaped): the runner is to stop.
    if run.status.ended() {
        return Ok(true);
    }
    if run.status != Status::Running {
        return Err(Error::Conflict(format!("deployment {} is {}", run.id, run.status.as_str())));
    }
    let meta = app.ports.meta.as_ref();
    if !lines.is_empty() {
        let lines: Vec<LogLine> = lines
            .into_iter()
            .map(|mut l| {
                l.timestamp = Json::String(timestamp(&l.timestamp));
                l.line = l.line.chars().take(MAX_LINE).collect();
                l.header = l.header.chars().take(64).collect();
                l
            })
            .collect();
        let body = serde_json::to_string(&lines)
            .map_err(|e| Error::internal(format!("log lines do not serialise: {e}")))?;
        let item = Item::new(run_pk(&run.id), format!("{LOG_PREFIX}{chunk:08}"))
            .with("lines", Value::S(body));
        match meta.put(item, Some(Condition::NotExists)).await {
            Ok(()) | Err(MetaError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut u = Update::new(run_pk(&run.id), RUN_SK);
    u.set.insert("heartbeat".into(), Value::N(app.clock.now()));
    u.condition =
        Some(Condition::Equals("status".into(), Value::S(Status::Running.as_str().into())));
    let item = match meta.update(u).await {
        Ok(item) => item,
        Err(MetaError::ConditionFailed) => return Ok(true),
        Err(e) => return Err(e.into()),
    };
    Ok(item.bool("cancel") == Some(true))
}

/// RFC 3339 of a timestamp the runner sent (Unix milliseconds or already a string).
fn timestamp(t: &Json) -> String {
    match t {
        Json::Number(n) => {
            let ms = n.as_i64().unwrap_or(0);
            let secs = ms.div_euclid(1000);
            let base = crate::service::environments::rfc3339(secs);
            // `…Z` → `….mmmZ`
            format!("{}.{:03}Z", base.trim_end_matches('Z'), ms.rem_euclid(1000))
        }
        Json::String(s) => s.chars().take(40).collect(),
        _ => String::new(),
    }
}

/// The runner reports how the run ended: the run ends, its slot is freed, its token revoked.
/// Idempotent: an ended run stays as it ended.
pub async fn complete(app: &App, run: &Run, succeeded: bool, message: &str) -> Result<()> {
    if run.status.ended() {
        return Ok(());
    }
    finish(app, run, succeeded, message).await
}

pub(super) async fn finish(app: &App, run: &Run, succeeded: bool, message: &str) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let now = app.clock.now();
    let drift = match (succeeded, run.operation) {
        (true, super::Operation::DetectDrift) => Some(super::drift::evaluate(meta, run).await?),
        _ => None,
    };
    let ended = Run {
        drift,
        status: if succeeded { Status::Succeeded } else { Status::Failed },
        message: (!succeeded).then(|| message.chars().take(2000).collect()),
        ended: Some(now),
        modified: now,
        token_hash: None,
        ..run.clone()
    };
    let mut ops = vec![TransactOp::Put(
        ended.item(),
        Some(Condition::Equals("status".into(), Value::S(run.status.as_str().into()))),
    )];
    ops.push(TransactOp::Delete { pk: LIVE_PK.into(), sk: run.id.clone(), condition: None });
    if let Some(hash) = &run.token_hash {
        ops.push(TransactOp::Delete {
            pk: item_keys::token_pk(hash),
            sk: item_keys::TOKEN_SK.into(),
            condition: None,
        });
    }
    match meta.transact(ops).await {
        Ok(()) => {}
        Err(MetaError::ConditionFailed) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let pk = item_keys::stack_id_pk(&run.stack_id);
    match meta
        .delete(&pk, ACTIVE_SK, Some(Condition::Equals("id".into(), Value::S(run.id.clone()))))
        .await
    {
        Ok(()) | Err(MetaError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    // After the slot is free: the stack's next run need not wait for the deliveries.
    super::notify::run_step(app, &ended, super::notify::Step::Ended, None).await;
    if let Err(e) = super::drift::remediate(app, &ended).await {
        tracing::warn!(deployment = %run.id, error = %e, "the drift remediation did not start");
    }
    Ok(())
}

/// One page of a run's log after `after` (a chunk number; None: from the start), and the
/// token of the next page: None once the run has ended and every chunk was read.
pub async fn logs(
    meta: &dyn MetadataStore,
    run: &Run,
    after: Option<u32>,
) -> Result<(Vec<LogLine>, Option<String>)> {
    let mut q = Query::prefix(run_pk(&run.id), LOG_PREFIX, 50);
    q.after = after.map(|n| format!("{LOG_PREFIX}{n:08}"));
    let page = meta.query(q).await?;
    let mut lines = Vec::new();
    let mut last = after;
    for item in &page.items {
        let chunk: Vec<LogLine> = serde_json::from_str(item.s("lines").unwrap_or("[]"))
            .map_err(|e| Error::internal(format!("a log chunk does not read: {e}")))?;
        lines.extend(chunk);
        last = item.sk.strip_prefix(LOG_PREFIX).and_then(|n| n.parse().ok());
    }
    let more = page.next.is_some() || !run.status.ended() || !page.items.is_empty();
    let next = more.then(|| last.map(|n| n.to_string()).unwrap_or_default());
    Ok((lines, next))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn runner_timestamps_become_rfc3339_with_milliseconds() {
        assert_eq!(timestamp(&json!(1_700_000_000_123_i64)), "2023-11-14T22:13:20.123Z");
        assert_eq!(timestamp(&json!("2024-01-01T00:00:00Z")), "2024-01-01T00:00:00Z");
        assert_eq!(timestamp(&json!(null)), "");
    }
}
