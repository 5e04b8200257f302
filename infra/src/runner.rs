//! The deployment runner on AWS (issue 21): a CodeBuild project whose every build runs one
//! deployment (`adapters::aws::codebuild` starts them), in the nested stack of the function
//! that starts them (`job-deployment-start`).
//!
//! The runner binary (`stackhouse-runner`, in the `local-emulator` crate) reaches the builds as
//! the code package of a Lambda function that never runs (reserved concurrency 0): `sam build`
//! builds it with cargo-lambda like every function and `sam deploy` uploads it, so deploying
//! needs no image registry and no extra step. A build downloads that package
//! (`lambda:GetFunction` hands out a short-lived URL of it), installs the Pulumi CLI of the
//! `PulumiVersion` parameter unless the image has one, and runs the runner, which asks the
//! API (`ApiUrl`) for its run with the token the build was started with.
//!
//! Builds run on x86_64 whatever the functions' `Architecture`: the runner starts the user's
//! Pulumi programs and providers, which all exist for x86_64.

use serde_json::{json, Map, Value};

use super::iam::{statement, LOG_ACTIONS, POLICY_VERSION};
use super::resources::{get_att, r#ref, sub};

/// The CodeBuild project's logical id; `job-deployment-start` gets its name and may start its
/// builds.
pub const PROJECT_ID: &str = "RunnerProject";
/// The Lambda function that carries the runner binary.
pub const PACKAGE_ID: &str = "RunnerPackageFunction";
/// The cargo binary it carries.
pub const BINARY: &str = "stackhouse-runner";
const ROLE_ID: &str = "RunnerProjectRole";
const LOG_GROUP_ID: &str = "RunnerProjectLogGroup";
const PACKAGE_ROLE_ID: &str = "RunnerPackageFunctionRole";
const PACKAGE_LOG_GROUP_ID: &str = "RunnerPackageFunctionLogGroup";

/// The IAM actions on the runner's project of a function that starts runners.
pub const START_ACTIONS: &[&str] = &["codebuild:StartBuild"];

/// What a build does: the Pulumi CLI (unless the image has one), the runner from its package,
/// then the run. Version 0.2 keeps one shell for all commands, so `PATH` holds.
const BUILDSPEC: &str = "version: 0.2
phases:
  build:
    commands:
      - export PATH=\"$HOME/.pulumi/bin:$PATH\"
      - command -v pulumi || curl -fsSL https://get.pulumi.com | sh -s -- --version \"$PULUMI_VERSION\"
      - pulumi version
      - curl -fsSL -o /tmp/runner.zip \"$(aws lambda get-function --function-name \"$STACKHOUSE_RUNNER_PACKAGE\" --query Code.Location --output text)\"
      - mkdir -p /tmp/runner && unzip -o -q /tmp/runner.zip -d /tmp/runner
      - /tmp/runner/bootstrap
";

/// The root template's parameters for the runner.
pub fn parameters() -> Value {
    json!({
        "RunnerImage": {
            "Type": "String",
            "Description": "Image of the deployment runner's CodeBuild builds (x86_64). The \
                default has git, curl and the AWS CLI; an image with the Pulumi CLI on its PATH \
                skips its download.",
            "Default": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
        },
        "RunnerComputeType": {
            "Type": "String",
            "Description": "Size of a deployment runner's build.",
            "Default": "BUILD_GENERAL1_SMALL",
            "AllowedValues": ["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM",
                "BUILD_GENERAL1_LARGE", "BUILD_GENERAL1_XLARGE", "BUILD_GENERAL1_2XLARGE"],
        },
        "RunnerTimeoutMinutes": {
            "Type": "Number",
            "Description": "Longest a deployment run may take (at most 240: a run's token \
                lives four hours).",
            "Default": 60,
            "MinValue": 5,
            "MaxValue": 240,
        },
        "PulumiVersion": {
            "Type": "String",
            "Description": "Pulumi CLI the runner installs when its image has none.",
            "Default": "3.276.0",
            "AllowedPattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$",
        },
    })
}

/// The runner's resources, for the nested stack of the function that starts builds.
pub fn resources(resources: &mut Map<String, Value>) {
    let log_group = |id: &str, name: &str| {
        json!({
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": sub(&format!("/aws/{name}")),
                "RetentionInDays": r#ref("LogRetentionDays"),
            },
        })
        .as_object()
        .map(|o| (id.to_string(), Value::Object(o.clone())))
    };
    resources.extend(log_group(LOG_GROUP_ID, "codebuild/${RootStackName}/runner"));
    resources.extend(log_group(PACKAGE_LOG_GROUP_ID, "lambda/${RootStackName}/runner-package"));
    let assume = |service: &str| {
        json!({
            "Version": POLICY_VERSION,
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }],
        })
    };
    // The package's function never runs: a role that may do nothing but log.
    resources.insert(
        PACKAGE_ROLE_ID.into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Stackhouse runner package: never runs",
                "AssumeRolePolicyDocument": assume("lambda.amazonaws.com"),
                "Policies": [{
                    "PolicyName": "runner-package",
                    "PolicyDocument": {"Version": POLICY_VERSION, "Statement": [statement(
                        "Logs", LOG_ACTIONS, vec![get_att(PACKAGE_LOG_GROUP_ID, "Arn")],
                    )]},
                }],
            },
        }),
    );
    resources.insert(
        PACKAGE_ID.into(),
        json!({
            "Type": "AWS::Serverless::Function",
            "Metadata": {
                "BuildMethod": "rust-cargolambda",
                "BuildProperties": {"Binary": BINARY},
            },
            "Properties": {
                "Description": "The deployment runner's binary, which the runner's CodeBuild \
                    builds download: never invoked",
                "CodeUri": "../..",
                "Handler": "bootstrap",
                "Runtime": "provided.al2023",
                "Architectures": ["x86_64"],
                "MemorySize": 128,
                "Timeout": 3,
                "ReservedConcurrentExecutions": 0,
                "Role": get_att(PACKAGE_ROLE_ID, "Arn"),
                "LoggingConfig": {"LogGroup": r#ref(PACKAGE_LOG_GROUP_ID)},
            },
        }),
    );
    // A build may write its log and fetch the runner's package; nothing of the data: the
    // runner reaches Stackhouse over its API with the run's token alone.
    resources.insert(
        ROLE_ID.into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Stackhouse deployment runner builds: their log and the runner",
                "AssumeRolePolicyDocument": assume("codebuild.amazonaws.com"),
                "Policies": [{
                    "PolicyName": "runner",
                    "PolicyDocument": {"Version": POLICY_VERSION, "Statement": [
                        statement("Logs", LOG_ACTIONS, vec![get_att(LOG_GROUP_ID, "Arn")]),
                        statement("Package", &["lambda:GetFunction"], vec![get_att(PACKAGE_ID, "Arn")]),
                    ]},
                }],
            },
        }),
    );
    let var = |name: &str, value: Value| json!({"Name": name, "Type": "PLAINTEXT", "Value": value});
    resources.insert(
        PROJECT_ID.into(),
        json!({
            "Type": "AWS::CodeBuild::Project",
            "Properties": {
                "Description": "Stackhouse: each build runs one deployment",
                "ServiceRole": get_att(ROLE_ID, "Arn"),
                "Source": {"Type": "NO_SOURCE", "BuildSpec": BUILDSPEC},
                "Artifacts": {"Type": "NO_ARTIFACTS"},
                "Environment": {
                    "Type": "LINUX_CONTAINER",
                    "ComputeType": r#ref("RunnerComputeType"),
                    "Image": r#ref("RunnerImage"),
                    "EnvironmentVariables": [
                        var("STACKHOUSE_RUNNER_URL", r#ref("ApiUrl")),
                        var("STACKHOUSE_RUNNER_PACKAGE", r#ref(PACKAGE_ID)),
                        var("PULUMI_VERSION", r#ref("PulumiVersion")),
                    ],
                },
                "TimeoutInMinutes": r#ref("RunnerTimeoutMinutes"),
                "LogsConfig": {"CloudWatchLogs": {
                    "Status": "ENABLED",
                    "GroupName": r#ref(LOG_GROUP_ID),
                }},
            },
        }),
    );
}
