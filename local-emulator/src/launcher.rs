//! The emulator's launcher (`ports::launcher`): a deployment's runner as a child process of
//! this binary (`local-emulator runner`), or, where there is no such binary (the test suite's
//! in-process server), as a task of this process running the same code. Either way it talks
//! to this Stackhouse only over HTTP, with the run's token.

use std::path::PathBuf;

use stackhouse::ports::launcher::{Launch, LaunchError, Launcher};

/// How runners are started.
pub enum LocalLauncher {
    /// `exe runner`, with the deployment in its environment.
    Process { exe: PathBuf, url: String, work_root: PathBuf },
    /// A task of this process.
    Task { url: String, work_root: PathBuf },
}

/// The variables `local-emulator runner` reads.
pub const RUNNER_URL: &str = "STACKHOUSE_RUNNER_URL";
pub const RUNNER_TOKEN: &str = "STACKHOUSE_RUNNER_TOKEN";
pub const RUNNER_DEPLOYMENT: &str = "STACKHOUSE_RUNNER_DEPLOYMENT";
pub const RUNNER_WORKDIR: &str = "STACKHOUSE_RUNNER_WORKDIR";

#[async_trait::async_trait]
impl Launcher for LocalLauncher {
    async fn launch(&self, launch: &Launch) -> Result<(), LaunchError> {
        match self {
            LocalLauncher::Process { exe, url, work_root } => {
                let mut child = tokio::process::Command::new(exe)
                    .arg("runner")
                    .env(RUNNER_URL, url)
                    .env(RUNNER_TOKEN, &launch.token)
                    .env(RUNNER_DEPLOYMENT, &launch.deployment)
                    .env(RUNNER_WORKDIR, work_root.join(&launch.deployment))
                    .stdin(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| LaunchError(format!("cannot start {}: {e}", exe.display())))?;
                // Reaped when it ends; it reports to the service itself.
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            LocalLauncher::Task { url, work_root } => {
                let (url, token, id) =
                    (url.clone(), launch.token.clone(), launch.deployment.clone());
                let workdir = work_root.join(&id);
                tokio::spawn(async move {
                    if let Err(e) = crate::runner::serve_run(&url, &token, &id, &workdir).await {
                        tracing::warn!(deployment = %id, error = %e, "runner");
                    }
                });
            }
        }
        Ok(())
    }
}
