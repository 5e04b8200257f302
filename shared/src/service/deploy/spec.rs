//! What a runner is given to run one deployment (the contract between the service, which
//! builds it from the stack's settings, and the runner, which may run in another account's
//! CodeBuild project or as the emulator's child process): plain values only, secrets already
//! opened, so the runner needs no key and no table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Operation;

/// One deployment to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RunSpec {
    /// The deployment's id (`PULUMI_CI_BUILD_ID`).
    pub id: String,
    /// The deployment's version on its stack (`PULUMI_CI_BUILD_NUMBER`).
    pub version: i64,
    /// This Stackhouse, as the CLI logs in to it.
    pub backend_url: String,
    /// What the CLI authenticates with.
    pub access_token: String,
    pub org: String,
    pub project: String,
    pub stack: String,
    pub operation: Operation,
    pub source: GitCheckout,
    /// Environment variables, secrets opened.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub pre_run_commands: Vec<String>,
    /// The shell pre-run commands run in (`bash` when None).
    #[serde(default)]
    pub shell: Option<String>,
    /// No `pulumi install` before the operation.
    #[serde(default)]
    pub skip_install: bool,
    /// A `destroy` also removes the stack.
    #[serde(default)]
    pub delete_after_destroy: bool,
    /// The opened values of the settings' secrets: the runner masks them in the log.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// Where the program comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct GitCheckout {
    /// Anything `git clone` takes.
    pub url: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    /// The program's directory inside the repository.
    #[serde(default)]
    pub dir: Option<String>,
    /// HTTP credentials (an access token goes as the password of `x-access-token`).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl RunSpec {
    /// `org/project/stack`.
    pub fn stack_ref(&self) -> String {
        format!("{}/{}/{}", self.org, self.project, self.stack)
    }

    /// The `pulumi` arguments of the operation (non-interactive, no confirmation).
    pub fn pulumi_args(&self) -> Vec<String> {
        let stack = self.stack_ref();
        let mut args: Vec<&str> = match self.operation {
            Operation::Update => vec!["up", "--yes", "--skip-preview"],
            // Refresh first, so the update sees the drift and puts the resources back.
            Operation::RemediateDrift => vec!["up", "--yes", "--skip-preview", "--refresh"],
            Operation::Preview => vec!["preview"],
            Operation::Refresh => vec!["refresh", "--yes", "--skip-preview"],
            // A refresh preview: drift shows as changes it would make.
            Operation::DetectDrift => vec!["refresh", "--preview-only"],
            Operation::Destroy => vec!["destroy", "--yes", "--skip-preview"],
        };
        if self.operation == Operation::Destroy && self.delete_after_destroy {
            args.push("--remove");
        }
        let mut out: Vec<String> = args.into_iter().map(str::to_string).collect();
        out.extend(["--non-interactive".to_string(), "--stack".to_string(), stack]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_cli_commands() {
        let mut spec = RunSpec {
            id: "d".into(),
            version: 1,
            backend_url: "http://127.0.0.1:8080".into(),
            access_token: "t".into(),
            org: "acme".into(),
            project: "web".into(),
            stack: "dev".into(),
            operation: Operation::Update,
            source: GitCheckout::default(),
            environment: BTreeMap::new(),
            pre_run_commands: vec![],
            shell: None,
            skip_install: false,
            delete_after_destroy: true,
            secrets: vec![],
        };
        assert_eq!(
            spec.pulumi_args(),
            ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "acme/web/dev"]
        );
        spec.operation = Operation::Destroy;
        assert!(spec.pulumi_args().contains(&"--remove".to_string()));
        spec.operation = Operation::DetectDrift;
        assert_eq!(spec.pulumi_args()[..2], ["refresh", "--preview-only"]);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<RunSpec>(&json).unwrap(), spec);
    }
}
