//! The port that starts a deployment's runner (issue 21): somewhere other than the API
//! functions, with nothing but the deployment's id and its short-lived token; the runner then
//! asks this Stackhouse for the rest over HTTP. Adapters: the emulator's local runner (a
//! child process of the emulator binary); AWS's is a CodeBuild build (not yet written).
//! A process without one refuses, and the deployment fails saying so.

use std::sync::{Arc, OnceLock};

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

/// The process's launcher, set once where runners can be started.
#[derive(Default)]
pub struct LauncherSlot(OnceLock<Arc<dyn Launcher>>);

impl LauncherSlot {
    /// Sets the launcher (a second call keeps the first).
    pub fn set(&self, launcher: Arc<dyn Launcher>) {
        let _ = self.0.set(launcher);
    }

    /// The launcher, if this process has one.
    pub fn get(&self) -> Option<&Arc<dyn Launcher>> {
        self.0.get()
    }
}
