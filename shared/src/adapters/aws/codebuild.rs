//! The launcher port on AWS: each deployment run is a build of the runner's CodeBuild project
//! (infra/: `RunnerProject`), whose buildspec fetches `stackhouse-runner` and runs it.
//!
//! CodeBuild rather than an ECS Fargate task: a build needs no VPC, subnets, security group or
//! cluster in the team's account, takes the run's variables per `StartBuild` call, writes its
//! output to CloudWatch Logs, stops itself at the project's timeout and is billed by the
//! second. The build gets the run's id and token as plain-text variable overrides: whoever may
//! read the project's builds (`codebuild:BatchGetBuilds`) can read the token, which is scoped
//! to the run's stack and expires with the run (`service::deploy::runs::TOKEN_SECONDS`).

use async_trait::async_trait;
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType};

use super::readable;
use crate::ports::launcher::{Launch, LaunchError, Launcher, RUNNER_DEPLOYMENT, RUNNER_TOKEN};

/// Starts runners as builds of one CodeBuild project.
#[derive(Debug, Clone)]
pub struct CodeBuildLauncher {
    client: aws_sdk_codebuild::Client,
    /// The runner's project (`STACKHOUSE_RUNNER_PROJECT`).
    project: String,
}

impl CodeBuildLauncher {
    pub fn new(client: aws_sdk_codebuild::Client, project: impl Into<String>) -> Self {
        CodeBuildLauncher { client, project: project.into() }
    }
}

fn plain(name: &str, value: &str) -> Result<EnvironmentVariable, LaunchError> {
    EnvironmentVariable::builder()
        .name(name)
        .value(value)
        .r#type(EnvironmentVariableType::Plaintext)
        .build()
        .map_err(|e| LaunchError(format!("build variable {name}: {e}")))
}

#[async_trait]
impl Launcher for CodeBuildLauncher {
    async fn launch(&self, launch: &Launch) -> Result<(), LaunchError> {
        self.client
            .start_build()
            .project_name(&self.project)
            .environment_variables_override(plain(RUNNER_DEPLOYMENT, &launch.deployment)?)
            .environment_variables_override(plain(RUNNER_TOKEN, &launch.token)?)
            // The SDK retries a call whose answer it lost: the run's id makes that one build.
            .idempotency_token(&launch.deployment)
            .send()
            .await
            .map_err(|e| {
                LaunchError(format!("CodeBuild project {}: {}", self.project, readable(&e)))
            })?;
        Ok(())
    }
}
