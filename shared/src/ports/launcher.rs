//! The port that starts a deployment's runner (issue 21): somewhere other than the API
//! functions, with nothing but the deployment's id and its short-lived token; the runner then
//! asks this Stackhouse for the rest over HTTP. Adapters: the emulator's local runner (a
//! child process of the emulator binary) and AWS's CodeBuild build
//! (`adapters::aws::codebuild`). A process without one refuses, and the deployment fails
//! saying so.

use std::sync::{Arc, RwLock};

/// The variables a runner reads (`stackhouse-runner`, `local-emulator runner`): every
/// launcher hands the run over through them. The service's URL.
pub const RUNNER_URL: &str = "STACKHOUSE_RUNNER_URL";
/// The run's token.
pub const RUNNER_TOKEN: &str = "STACKHOUSE_RUNNER_TOKEN";
/// The run's id.
pub const RUNNER_DEPLOYMENT: &str = "STACKHOUSE_RUNNER_DEPLOYMENT";
/// Where the runner makes its workspace (a directory of its own; removed at the end).
pub const RUNNER_WORKDIR: &str = "STACKHOUSE_RUNNER_WORKDIR";

/// What a runner needs to find its deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The deployment's id.
    pub deployment: String,
    /// Its token: the runner's credential for the runner routes and the CLI's for the stack.
    pub token: String,
}

/// Why a runner did not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LaunchError(pub String);

/// Starts runners.
#[async_trait::async_trait]
pub trait Launcher: Send + Sync {
    /// Starts a runner for `launch` and returns once it is on its way (not when it ends).
    async fn launch(&self, launch: &Launch) -> Result<(), LaunchError>;
}

/// The process's launcher, set where runners can be started (at start-up; tests swap it).
#[derive(Default)]
pub struct LauncherSlot(RwLock<Option<Arc<dyn Launcher>>>);

impl LauncherSlot {
    /// Sets the launcher, replacing any earlier one.
    pub fn set(&self, launcher: Arc<dyn Launcher>) {
        // A poisoned lock only means a panic elsewhere while it was held; the value is whole.
        let mut slot = self.0.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(launcher);
    }

    /// The launcher, if this process has one.
    pub fn get(&self) -> Option<Arc<dyn Launcher>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
