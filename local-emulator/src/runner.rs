//! The deployment runner: runs one deployment ([`RunSpec`]) the way Pulumi Deployments does —
//! a fresh workspace, the program checked out with `git`, the pre-run commands, `pulumi
//! install` unless skipped, then the operation against this Stackhouse — and streams every
//! line the commands print to a [`Sink`] as it comes. It never runs in an API function: the
//! emulator starts it as a child process, AWS as a build (issue 21).
//!
//! A sink may answer [`Control::Cancel`]: the running command gets SIGINT (the Pulumi CLI then
//! cancels its update cleanly), and SIGKILL if it has not ended a minute later.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use base64::Engine;
use stackhouse::service::deploy::spec::RunSpec;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// One line of a deployment's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Unix milliseconds.
    pub timestamp: i64,
    /// The step it belongs to (`Source`, `Pre-run`, `Install`, `Pulumi`).
    pub header: String,
    pub line: String,
}

/// What a sink says after taking lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Cancel,
}

/// Where the lines go: the service's log of the run.
#[async_trait::async_trait]
pub trait Sink: Send {
    async fn write(&mut self, lines: Vec<LogLine>) -> Control;
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub succeeded: bool,
    /// Why it failed (empty when it succeeded).
    pub message: String,
}

impl Outcome {
    fn failed(message: impl Into<String>) -> Outcome {
        Outcome { succeeded: false, message: message.into() }
    }
}

/// How long a command may take to end after SIGINT before it is killed.
const GRACE_AFTER_INTERRUPT: Duration = Duration::from_secs(60);
/// Lines are sent at least this often while a command runs...
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// ... or when this many are waiting.
const FLUSH_LINES: usize = 100;
/// A command that prints nothing still reports this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Shortest secret masked: masking every `1` or `on` in a log would hide more than it keeps.
const MIN_MASKED: usize = 3;

/// A sink that replaces every secret in each line with `[secret]` before passing it on, as
/// Pulumi Deployments' logs do: the settings' secret values, the git password and the run's
/// token.
struct Masked<'a> {
    inner: &'a mut dyn Sink,
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl<'a> Masked<'a> {
    fn new(spec: &RunSpec, inner: &'a mut dyn Sink) -> Masked<'a> {
        let mut secrets: Vec<String> = spec
            .secrets
            .iter()
            .chain([&spec.access_token])
            .filter(|s| s.chars().count() >= MIN_MASKED)
            .cloned()
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masked { inner, secrets }
    }

    fn mask(&self, line: String) -> String {
        self.secrets.iter().fold(line, |l, s| {
            if l.contains(s.as_str()) {
                l.replace(s.as_str(), "[secret]")
            } else {
                l
            }
        })
    }
}

#[async_trait::async_trait]
impl Sink for Masked<'_> {
    async fn write(&mut self, lines: Vec<LogLine>) -> Control {
        let lines = lines.into_iter().map(|l| LogLine { line: self.mask(l.line), ..l }).collect();
        self.inner.write(lines).await
    }
}

/// Runs `spec` in `workdir` (made if absent; the checkout goes to `workdir/source`), its
/// secrets masked in every line `sink` gets.
pub async fn run(spec: &RunSpec, workdir: &Path, sink: &mut dyn Sink) -> Outcome {
    let mut masked = Masked::new(spec, sink);
    run_steps(spec, workdir, &mut masked).await
}

async fn run_steps(spec: &RunSpec, workdir: &Path, sink: &mut dyn Sink) -> Outcome {
    let env = environment(spec, workdir);
    let source = workdir.join("source");
    if let Err(e) = std::fs::create_dir_all(workdir.join("home")) {
        return Outcome::failed(format!("cannot prepare the workspace: {e}"));
    }
    let say =
        |header: &str, line: String| LogLine { timestamp: now_ms(), header: header.into(), line };

    // Source: clone (the branch or tag), then the commit if one is named.
    let git = &spec.source;
    let mut clone = command("git", &env, workdir);
    clone.args(["clone", "--quiet"]);
    if let Some(at) = git.branch.as_ref().or(git.tag.as_ref()) {
        clone.args(["--branch", at.trim_start_matches("refs/heads/")]);
    }
    clone.arg("--").arg(&git.url).arg(&source);
    if let Some((k, v)) = auth_header(spec) {
        clone.env("GIT_CONFIG_COUNT", "1").env("GIT_CONFIG_KEY_0", k).env("GIT_CONFIG_VALUE_0", v);
    }
    let at = git.branch.as_deref().or(git.tag.as_deref()).unwrap_or("its default branch");
    if sink.write(vec![say("Source", format!("Cloning {} at {at}", git.url))]).await
        == Control::Cancel
    {
        return Outcome::failed("cancelled");
    }
    match step(clone, "Source", sink).await {
        Ok(s) if s.success() => {}
        Ok(s) => return Outcome::failed(format!("git clone failed ({s})")),
        Err(stop) => return stop.outcome("git clone"),
    }
    if let Some(commit) = &git.commit {
        let mut checkout = command("git", &env, &source);
        checkout.args(["checkout", "--quiet", "--detach", commit]);
        match step(checkout, "Source", sink).await {
            Ok(s) if s.success() => {}
            Ok(_) => return Outcome::failed(format!("commit {commit} is not in the repository")),
            Err(stop) => return stop.outcome("git checkout"),
        }
    }
    let program = match &git.dir {
        Some(d) if !d.is_empty() => source.join(d),
        _ => source.clone(),
    };
    if !program.is_dir() {
        let dir = git.dir.as_deref().unwrap_or_default();
        return Outcome::failed(format!("the repository has no directory {dir:?}"));
    }

    // Pre-run commands, each in the program's directory, in order; the first that fails ends
    // the run.
    let shell = spec.shell.as_deref().unwrap_or("bash");
    for c in &spec.pre_run_commands {
        if sink.write(vec![say("Pre-run", format!("$ {c}"))]).await == Control::Cancel {
            return Outcome::failed("cancelled");
        }
        let mut cmd = command(shell, &env, &program);
        cmd.args(["-c", c]);
        match step(cmd, "Pre-run", sink).await {
            Ok(s) if s.success() => {}
            Ok(s) => return Outcome::failed(format!("pre-run command `{c}` failed ({s})")),
            Err(stop) => return stop.outcome("a pre-run command"),
        }
    }

    if !spec.skip_install {
        let mut install = command("pulumi", &env, &program);
        install.args(["install", "--non-interactive"]);
        match step(install, "Install", sink).await {
            Ok(s) if s.success() => {}
            Ok(s) => return Outcome::failed(format!("pulumi install failed ({s})")),
            Err(stop) => return stop.outcome("pulumi install"),
        }
    }

    let args = spec.pulumi_args();
    if sink.write(vec![say("Pulumi", format!("$ pulumi {}", args.join(" ")))]).await
        == Control::Cancel
    {
        return Outcome::failed("cancelled");
    }
    let mut pulumi = command("pulumi", &env, &program);
    pulumi.args(&args);
    match step(pulumi, "Pulumi", sink).await {
        Ok(s) if s.success() => Outcome { succeeded: true, message: String::new() },
        Ok(s) => Outcome::failed(format!("pulumi {} failed ({s})", args[0])),
        Err(stop) => stop.outcome(&format!("pulumi {}", args[0])),
    }
}

/// The environment of every command: the runner's own (its `PATH` finds `git`, `pulumi` and
/// the plugins), what Pulumi Deployments sets, then the stack's variables, which win.
fn environment(spec: &RunSpec, workdir: &Path) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    for (k, v) in [
        ("PULUMI_BACKEND_URL", spec.backend_url.clone()),
        ("PULUMI_ACCESS_TOKEN", spec.access_token.clone()),
        ("PULUMI_HOME", workdir.join("home").display().to_string()),
        ("PULUMI_SKIP_UPDATE_CHECK", "true".into()),
        ("PULUMI_CI_SYSTEM", "Stackhouse Deployments".into()),
        ("PULUMI_CI_BUILD_ID", spec.id.clone()),
        ("PULUMI_CI_BUILD_NUMBER", spec.version.to_string()),
        ("PULUMI_CI_ORGANIZATION", spec.org.clone()),
        ("PULUMI_CI_PROJECT", spec.project.clone()),
        ("PULUMI_CI_STACK", spec.stack.clone()),
        (
            "PULUMI_CI_OPERATION",
            serde_json::to_value(spec.operation)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ),
        ("NO_COLOR", "1".into()),
    ] {
        env.insert(k.to_string(), v);
    }
    // Every operation runs with `--yes` but the refresh preview of drift detection, which the
    // CLI refuses to combine with it (and PULUMI_SKIP_CONFIRMATIONS means `--yes`).
    if spec.operation != stackhouse::service::deploy::Operation::DetectDrift {
        env.insert("PULUMI_SKIP_CONFIRMATIONS".into(), "true".into());
    }
    env.extend(spec.environment.clone());
    env
}

/// The git configuration that authenticates HTTP(S) fetches, kept out of the command line.
fn auth_header(spec: &RunSpec) -> Option<(&'static str, String)> {
    let git = &spec.source;
    let password = git.password.as_deref()?;
    let user = git.username.as_deref().unwrap_or("x-access-token");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Some(("http.extraHeader", format!("Authorization: Basic {basic}")))
}

fn command(program: &str, env: &BTreeMap<String, String>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Why a step stopped before its command ended by itself.
enum Stop {
    /// It could not start.
    Spawn(std::io::Error),
    /// The sink cancelled the run.
    Cancelled,
}

impl Stop {
    fn outcome(self, what: &str) -> Outcome {
        match self {
            Stop::Spawn(e) => Outcome::failed(format!("{what} could not start: {e}")),
            Stop::Cancelled => Outcome::failed(format!("cancelled during {what}")),
        }
    }
}

/// Runs `cmd`, sending its stdout and stderr lines to `sink` as they come.
async fn step(mut cmd: Command, header: &str, sink: &mut dyn Sink) -> Result<ExitStatus, Stop> {
    let mut child = cmd.spawn().map_err(Stop::Spawn)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    for out in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut pending: Vec<LogLine> = Vec::new();
    let mut cancelled_at: Option<tokio::time::Instant> = None;
    let mut last_write = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let mut open = true;
    loop {
        tokio::select! {
            line = rx.recv(), if open => match line {
                Some(line) => {
                    pending.push(LogLine { timestamp: now_ms(), header: header.into(), line });
                    if pending.len() < FLUSH_LINES {
                        continue;
                    }
                }
                None => open = false,
            },
            _ = tick.tick() => {}
        }
        let batch = std::mem::take(&mut pending);
        // Quiet commands still send (nothing) now and then: the run's heartbeat.
        let quiet = batch.is_empty() && open && last_write.elapsed() < HEARTBEAT_EVERY;
        let control = if quiet {
            Control::Continue
        } else {
            last_write = tokio::time::Instant::now();
            sink.write(batch).await
        };
        if control == Control::Cancel && cancelled_at.is_none() {
            cancelled_at = Some(tokio::time::Instant::now());
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child's pid; no memory is touched.
                unsafe { libc::kill(pid as i32, libc::SIGINT) };
            }
        }
        if cancelled_at.is_some_and(|t| t.elapsed() > GRACE_AFTER_INTERRUPT) {
            let _ = child.start_kill();
        }
        if !open {
            let status = child.wait().await.map_err(Stop::Spawn)?;
            return if cancelled_at.is_some() { Err(Stop::Cancelled) } else { Ok(status) };
        }
    }
}

/// A runner as a launcher starts it (`local-emulator runner`, `stackhouse-runner` in a
/// CodeBuild build): the run from the variables of `ports::launcher`, the workspace in a
/// directory of its own under the system's temporary one unless `STACKHOUSE_RUNNER_WORKDIR`
/// says where. Err when the run failed (the process exits non-zero: a CodeBuild build fails
/// with its run) or the service could not be reached.
pub async fn from_env() -> Result<(), String> {
    use stackhouse::ports::launcher::{
        RUNNER_DEPLOYMENT, RUNNER_TOKEN, RUNNER_URL, RUNNER_WORKDIR,
    };
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let (url, token, id) = (var(RUNNER_URL)?, var(RUNNER_TOKEN)?, var(RUNNER_DEPLOYMENT)?);
    let workdir = match std::env::var_os(RUNNER_WORKDIR) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("stackhouse-run-{id}")),
    };
    let outcome = serve_run(&url, &token, &id, &workdir).await?;
    match outcome.succeeded {
        true => Ok(()),
        false => Err(outcome.message),
    }
}

/// A runner started for a deployment of the Stackhouse at `url`: claims the run with the
/// run's `token`, runs it in `workdir` sending its log as it goes, reports how it ended, and
/// removes the workspace. Err when the service could not be reached to claim or report.
pub async fn serve_run(
    url: &str,
    token: &str,
    id: &str,
    workdir: &Path,
) -> Result<Outcome, String> {
    let client = Runner::new(url, token, id)?;
    let claimed = client.post("claim", &serde_json::json!({})).await?;
    let mut spec: RunSpec =
        claimed.json().await.map_err(|e| format!("the claim's answer does not read: {e}"))?;
    spec.backend_url = url.trim_end_matches('/').to_string();
    spec.access_token = token.to_string();
    let mut sink = HttpSink { client: &client, chunk: 0 };
    let outcome = run(&spec, workdir, &mut sink).await;
    let _ = std::fs::remove_dir_all(workdir);
    let ended = serde_json::json!({"succeeded": outcome.succeeded, "message": outcome.message});
    client.post("complete", &ended).await?;
    Ok(outcome)
}

/// The runner's side of the runner routes.
struct Runner {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Runner {
    fn new(url: &str, token: &str, id: &str) -> Result<Runner, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let base = format!("{}/api/deployments/{id}/runner", url.trim_end_matches('/'));
        Ok(Runner { http, base, token: token.to_string() })
    }

    /// POSTs `body` to the runner route `what`, retrying transport errors and 5xx answers
    /// (every runner route is idempotent).
    async fn post(
        &self,
        what: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, String> {
        let mut wait = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..6 {
            let sent = self
                .http
                .post(format!("{}/{what}", self.base))
                .header("Authorization", format!("token {}", self.token))
                .json(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) if r.status().is_server_error() => last = r.status().to_string(),
                Ok(r) => {
                    let status = r.status();
                    return Err(format!("{what}: {status} {}", r.text().await.unwrap_or_default()));
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        Err(format!("{what}: {last}"))
    }
}

/// Sends the log to the run, a numbered chunk at a time (the number makes a resend harmless).
struct HttpSink<'a> {
    client: &'a Runner,
    chunk: u32,
}

#[async_trait::async_trait]
impl Sink for HttpSink<'_> {
    async fn write(&mut self, lines: Vec<LogLine>) -> Control {
        let body = serde_json::json!({"chunk": self.chunk, "lines": lines});
        if !lines.is_empty() {
            self.chunk += 1;
        }
        match self.client.post("logs", &body).await {
            Ok(r) => match r.json::<serde_json::Value>().await {
                Ok(v) if v["cancel"] == true => Control::Cancel,
                _ => Control::Continue,
            },
            // The service is out of reach: keep going; the run's heartbeat will tell.
            Err(e) => {
                tracing::warn!(error = %e, "runner: a log chunk was not delivered");
                Control::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Keep(Vec<String>);

    #[async_trait::async_trait]
    impl Sink for Keep {
        async fn write(&mut self, lines: Vec<LogLine>) -> Control {
            self.0.extend(lines.into_iter().map(|l| l.line));
            Control::Continue
        }
    }

    #[tokio::test]
    async fn secrets_and_the_token_are_masked_longest_first() {
        let spec = RunSpec {
            access_token: "pul-abcdef".into(),
            secrets: vec!["hunter2".into(), "hunter2-extra".into(), "on".into()],
            ..serde_json::from_value(serde_json::json!({
                "id": "d", "version": 1, "backendUrl": "", "accessToken": "", "org": "o",
                "project": "p", "stack": "s", "operation": "update", "source": {"url": ""}
            }))
            .expect("a spec")
        };
        let mut keep = Keep::default();
        let mut masked = Masked::new(&spec, &mut keep);
        let line =
            |text: &str| LogLine { timestamp: 0, header: "Pre-run".into(), line: text.into() };
        masked.write(vec![line("pw hunter2-extra and hunter2, token pul-abcdef, flag on")]).await;
        assert_eq!(keep.0, ["pw [secret] and [secret], token [secret], flag on"]);
    }
}
