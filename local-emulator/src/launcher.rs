//! The emulator's launcher (`ports::launcher`): a deployment's runner as a child process (the
//! emulator binary's `runner` command, or `stackhouse-runner`), or, where there is no such
//! binary (the test suite's in-process server), as a task of this process running the same
//! code. Either way it talks to this Stackhouse only over HTTP, with the run's token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use stackhouse::ports::launcher::{
    Launch, LaunchError, Launcher, RUNNER_DEPLOYMENT, RUNNER_TOKEN, RUNNER_URL, RUNNER_WORKDIR,
};

/// Runners as child processes, each the leader of a process group of its own (so the
/// commands it starts go with it when the group is killed).
pub struct Processes {
    pub exe: PathBuf,
    pub args: Vec<String>,
    pub url: String,
    pub work_root: PathBuf,
    /// The process id of each deployment's runner while it lives.
    live: Mutex<HashMap<String, u32>>,
}

impl Processes {
    pub fn new(exe: PathBuf, args: &[&str], url: &str, work_root: PathBuf) -> Processes {
        let args = args.iter().map(|a| a.to_string()).collect();
        Processes { exe, args, url: url.to_string(), work_root, live: Mutex::default() }
    }

    /// The process id of `deployment`'s runner, while it lives.
    pub fn pid_of(&self, deployment: &str) -> Option<u32> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).get(deployment).copied()
    }

    fn launch(self: &std::sync::Arc<Self>, launch: &Launch) -> Result<(), LaunchError> {
        let mut child = tokio::process::Command::new(&self.exe)
            .args(&self.args)
            .env(RUNNER_URL, &self.url)
            .env(RUNNER_TOKEN, &launch.token)
            .env(RUNNER_DEPLOYMENT, &launch.deployment)
            .env(RUNNER_WORKDIR, self.work_root.join(&launch.deployment))
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| LaunchError(format!("cannot start {}: {e}", self.exe.display())))?;
        let id = launch.deployment.clone();
        if let Some(pid) = child.id() {
            self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), pid);
        }
        // Reaped when it ends; it reports to the service itself.
        let me = self.clone();
        tokio::spawn(async move {
            let _ = child.wait().await;
            me.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
        Ok(())
    }
}

/// Runners as child processes (see [`Processes`]).
pub struct ProcessLauncher(pub std::sync::Arc<Processes>);

#[async_trait::async_trait]
impl Launcher for ProcessLauncher {
    async fn launch(&self, launch: &Launch) -> Result<(), LaunchError> {
        self.0.launch(launch)
    }
}

/// Runners as tasks of this process.
pub struct TaskLauncher {
    pub url: String,
    pub work_root: PathBuf,
}

#[async_trait::async_trait]
impl Launcher for TaskLauncher {
    async fn launch(&self, launch: &Launch) -> Result<(), LaunchError> {
        let (url, token, id) = (self.url.clone(), launch.token.clone(), launch.deployment.clone());
        let workdir = self.work_root.join(&id);
        tokio::spawn(async move {
            if let Err(e) = crate::runner::serve_run(&url, &token, &id, &workdir).await {
                tracing::warn!(deployment = %id, error = %e, "runner");
            }
        });
        Ok(())
    }
}
