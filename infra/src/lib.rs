//! The AWS SAM template of Stackhouse, generated from the route table and the job table
//! (docs/ARCHITECTURE.md, The route table).
//!
//! [`functions`] lists every Lambda function with its events, its needs and its environment;
//! [`template_value`] turns that list plus the shared resources (table, bucket, queues, key,
//! HTTP API) into a CloudFormation document; [`template`] renders it as the YAML committed in
//! `infra/template.yaml`. `cargo run -p stackhouse-infra` rewrites the file and a test fails
//! when it is stale. Background jobs are [`FunctionSpec`]s with [`Event::Schedule`] (an
//! EventBridge rate) or [`Event::Sqs`] (an SQS event source reporting partial batch failures).
//!
//! Every function gets its own role whose only permissions are those its [`Needs`] imply
//! ([`statements`]) plus writing to its own log group: no managed policy, no `*`.

pub mod yaml;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use stackhouse::api::routes::ROUTES;
use stackhouse::api::{Access, Auth, Needs};
use stackhouse::jobs::table::JOBS;
use stackhouse::jobs::Trigger;
use stackhouse::ports::metadata::{PARTITION_KEY_ATTR, SORT_KEY_ATTR, TTL_ATTR};
use stackhouse::ports::queue::{default_queues, QueueSpec};
use stackhouse::service::keys::BOOKKEEPING_KEY_PREFIXES;

/// The command that regenerates `infra/template.yaml`.
pub const REGENERATE: &str = "cargo run -p stackhouse-infra";

/// API Gateway gives an HTTP API integration at most 30 s; a function answers before that.
/// (Jobs have their own timeouts in the job table.)
pub const TIMEOUT_SECONDS: u32 = 29;
/// Memory of functions that only touch metadata and keys (CPU scales with memory).
pub const MEMORY_MB: u32 = 512;
/// Memory of functions that move blobs: checkpoints and exports of tens of MB are gzip-decoded
/// and parsed in memory (docs/ARCHITECTURE.md, Payload limits).
pub const BLOB_MEMORY_MB: u32 = 1024;
/// Days after which objects under `updates/` (checkpoint baselines, journals and events of
/// updates, which finish within hours) and noncurrent object versions are deleted.
pub const SCRATCH_DAYS: u32 = 30;

/// What triggers a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A route of the shared HTTP API (same `{param}` path syntax as the route table).
    HttpApi {
        /// HTTP method, upper case.
        method: String,
        /// Path template.
        path: String,
    },
    /// An EventBridge schedule invoking the function every `every_seconds` (whole minutes).
    Schedule {
        /// Period in seconds.
        every_seconds: u64,
    },
    /// An SQS event source on a queue of [`default_queues`], with partial batch responses.
    Sqs {
        /// Logical queue name.
        queue: String,
        /// Most messages per invocation.
        batch_size: usize,
    },
}

/// An EventBridge rate expression: `rate(1 minute)`, `rate(2 hours)`, `rate(5 minutes)`.
pub fn rate_expression(every_seconds: u64) -> String {
    let minutes = (every_seconds / 60).max(1);
    let (n, unit) = if minutes.is_multiple_of(1440) {
        (minutes / 1440, "day")
    } else if minutes.is_multiple_of(60) {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    format!("rate({n} {unit}{})", if n == 1 { "" } else { "s" })
}

/// One Lambda function of the template.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Route or job name: the binary under `functions/` and the base of the logical id.
    pub name: &'static str,
    /// Shown in the Lambda console.
    pub description: String,
    /// What invokes it.
    pub events: Vec<Event>,
    /// What it uses of each port: drives its IAM policy.
    pub needs: Needs,
    /// Environment variables (values may be intrinsics such as `{"Ref": "Table"}`).
    pub env: BTreeMap<String, Value>,
    /// Memory size in MB.
    pub memory_mb: u32,
    /// Timeout in seconds.
    pub timeout_seconds: u32,
    /// Authenticates access tokens, so records their last use whatever its needs say
    /// ([`bookkeeping_statement`]).
    pub token_auth: bool,
}

impl FunctionSpec {
    /// Logical id of the function: `stack-get` → `StackGetFunction`.
    pub fn logical_id(&self) -> String {
        format!("{}Function", pascal(self.name))
    }
    /// Logical id of its IAM role.
    pub fn role_id(&self) -> String {
        format!("{}Role", self.logical_id())
    }
    /// Logical id of its log group.
    pub fn log_group_id(&self) -> String {
        format!("{}LogGroup", self.logical_id())
    }
}

/// `stack-get` → `StackGet`.
pub fn pascal(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Logical id of a queue (`jobs` → `JobsQueue`).
pub fn queue_id(spec: &QueueSpec) -> String {
    format!("{}Queue", pascal(&spec.name))
}

/// Logical id of a queue's dead-letter queue (`jobs` → `JobsDeadLetterQueue`).
pub fn dlq_id(spec: &QueueSpec) -> String {
    format!("{}DeadLetterQueue", pascal(&spec.name))
}

fn r#ref(id: &str) -> Value {
    json!({ "Ref": id })
}

fn get_att(id: &str, attr: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attr] })
}

fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

/// The environment every function gets: where the AWS adapters find their resources
/// (`AwsConfig::from_env`) and the settings parameters. All four resources go to every
/// function even when its needs leave some out: names are not secrets, the adapter set is
/// built whole at cold start, and a function lacking the permission fails with a clear
/// AccessDenied naming the resource rather than talking to a default-named one.
pub fn base_env() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("STACKHOUSE_BACKEND".to_string(), json!("aws")),
        ("STACKHOUSE_TABLE".to_string(), r#ref("Table")),
        ("STACKHOUSE_BUCKET".to_string(), r#ref("Bucket")),
        ("STACKHOUSE_KMS_KEY_ID".to_string(), get_att("Key", "Arn")),
        ("STACKHOUSE_QUEUE_PREFIX".to_string(), sub("${AWS::StackName}-")),
        ("STACKHOUSE_LOG".to_string(), r#ref("LogLevel")),
        ("STACKHOUSE_HISTORY_RETENTION".to_string(), r#ref("HistoryRetention")),
    ])
}

fn memory_for(needs: &Needs) -> u32 {
    if needs.blobs == Access::None {
        MEMORY_MB
    } else {
        BLOB_MEMORY_MB
    }
}

/// Every function of the template: one per route of the route table, then one per job of the
/// job table.
pub fn functions() -> Vec<FunctionSpec> {
    let routes = ROUTES.iter().map(|route| FunctionSpec {
        name: route.name,
        description: format!("Stackhouse {} {} ({})", route.method, route.path, route.name),
        events: vec![Event::HttpApi {
            method: route.method.as_str().to_string(),
            path: route.path.to_string(),
        }],
        needs: route.needs,
        env: base_env(),
        memory_mb: memory_for(&route.needs),
        timeout_seconds: TIMEOUT_SECONDS,
        token_auth: route.auth() == Auth::User,
    });
    let jobs = JOBS.iter().map(|job| FunctionSpec {
        name: job.name,
        description: format!("Stackhouse job: {} ({})", job.description, job.name),
        events: match job.trigger {
            Trigger::Schedule { every_seconds, .. } => vec![Event::Schedule { every_seconds }],
            Trigger::Queue { queue, batch_size, .. } => {
                vec![Event::Sqs { queue: queue.to_string(), batch_size }]
            }
            // Invoked by hand (`aws lambda invoke`): no event source.
            Trigger::Manual { .. } => vec![],
        },
        needs: job.needs,
        env: base_env(),
        memory_mb: memory_for(&job.needs),
        timeout_seconds: job.timeout_seconds,
        token_auth: false,
    });
    routes.chain(jobs).collect()
}

/// IAM actions on the table for an access level. Reads are `GetItem` and `Query` (strongly
/// consistent reads need no extra action). `TransactWriteItems` has no IAM action of its own:
/// each of its items is authorized as the matching single-item action, so writes add
/// `PutItem`, `DeleteItem` and `ConditionCheckItem` (the adapter never calls `UpdateItem`).
pub fn dynamodb_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::None => &[],
        Access::Read => &["dynamodb:GetItem", "dynamodb:Query"],
        Access::Write => &[
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
        ],
    }
}

/// IAM actions on the bucket itself: listing (S3 also answers a GET of a missing key with 404
/// rather than 403 only when the caller may list).
pub fn s3_bucket_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::None => &[],
        Access::Read | Access::Write => &["s3:ListBucket"],
    }
}

/// IAM actions on the bucket's objects. Presigned GET URLs are signed with the function's
/// credentials, so `GetObject` covers them; conditional puts (`If-None-Match`) are `PutObject`.
pub fn s3_object_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::None => &[],
        Access::Read => &["s3:GetObject"],
        Access::Write => &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
    }
}

/// IAM actions on the KMS key: unwrapping data keys, and for writers generating them.
pub fn kms_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::None => &[],
        Access::Read => &["kms:Decrypt"],
        Access::Write => &["kms:Decrypt", "kms:GenerateDataKey"],
    }
}

/// IAM actions on the queues (not their dead-letter queues). For queues the two levels are
/// different capabilities rather than a superset: `Read` consumes (receive, ack, extend, as
/// the adapter does; `GetQueueAttributes` because Lambda's SQS event source polls with the
/// function's role), `Write` produces (send). Both resolve the queue URL by name.
pub fn sqs_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::None => &[],
        Access::Read => &[
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
        ],
        Access::Write => &["sqs:GetQueueUrl", "sqs:SendMessage"],
    }
}

/// Writing to the function's own log group (it is created by the template, so no
/// `logs:CreateLogGroup`).
pub const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];

fn statement(sid: &str, actions: &[&str], resources: Vec<Value>) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
    })
}

/// The IAM statements a function with these needs gets, each on its resources only.
pub fn statements(needs: &Needs) -> Vec<Value> {
    let mut out = Vec::new();
    let table = dynamodb_actions(needs.meta);
    if !table.is_empty() {
        out.push(statement("Table", table, vec![get_att("Table", "Arn")]));
    }
    let bucket = s3_bucket_actions(needs.blobs);
    if !bucket.is_empty() {
        out.push(statement("Bucket", bucket, vec![get_att("Bucket", "Arn")]));
    }
    let objects = s3_object_actions(needs.blobs);
    if !objects.is_empty() {
        out.push(statement("Objects", objects, vec![sub("${Bucket.Arn}/*")]));
    }
    let queue = sqs_actions(needs.queue);
    if !queue.is_empty() {
        let queues = default_queues().iter().map(|q| get_att(&queue_id(q), "Arn")).collect();
        out.push(statement("Queues", queue, queues));
    }
    let key = kms_actions(needs.keys);
    if !key.is_empty() {
        out.push(statement("Key", key, vec![get_att("Key", "Arn")]));
    }
    out
}

/// The one write a token-authenticated function may make whatever its needs: `PutItem` on
/// items whose partition key matches [`BOOKKEEPING_KEY_PREFIXES`] (a token's last-used time),
/// enforced by IAM through `dynamodb:LeadingKeys`.
pub fn bookkeeping_statement() -> Value {
    json!({
        "Sid": "Bookkeeping",
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem"],
        "Resource": [get_att("Table", "Arn")],
        "Condition": {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": BOOKKEEPING_KEY_PREFIXES},
        },
    })
}

const POLICY_VERSION: &str = "2012-10-17";
const ACCOUNT_ROOT: &str = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root";

fn parameters() -> Value {
    json!({
        "StageName": {
            "Type": "String",
            "Description": "Stage of the HTTP API. $default serves the API at the root of its \
                URL; a named stage serves it under /<stage> (the functions strip that prefix).",
            "Default": "$default",
            "AllowedPattern": "^(\\$default|[A-Za-z0-9_-]{1,128})$",
        },
        "Architecture": {
            "Type": "String",
            "Description": "CPU architecture of the functions (arm64 needs the \
                aarch64-unknown-linux-gnu Rust target where sam build runs).",
            "Default": "x86_64",
            "AllowedValues": ["x86_64", "arm64"],
        },
        "HistoryRetention": {
            "Type": "String",
            "Description": "Stack versions job-history-retention keeps: all, versions:N (the \
                newest N) or days:N (those of the last N days). The current version is always \
                kept.",
            "Default": "all",
            "AllowedPattern": "^(all|versions:[1-9][0-9]*|days:[1-9][0-9]*)$",
        },
        "LogLevel": {
            "Type": "String",
            "Description": "Log filter of the functions (STACKHOUSE_LOG).",
            "Default": "info",
            "AllowedValues": ["error", "warn", "info", "debug", "trace"],
        },
        "LogRetentionDays": {
            "Type": "Number",
            "Description": "Days to keep the functions' logs.",
            "Default": 30,
            // The values CloudWatch Logs accepts.
            "AllowedValues": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                1096, 1827, 2192, 2557, 2922, 3288, 3653],
        },
    })
}

fn data_resources(resources: &mut Map<String, Value>) {
    // Stateful resources survive `sam delete` and replacements: they hold every stack's state.
    resources.insert(
        "Table".into(),
        json!({
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": PARTITION_KEY_ATTR, "AttributeType": "S"},
                    {"AttributeName": SORT_KEY_ATTR, "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": PARTITION_KEY_ATTR, "KeyType": "HASH"},
                    {"AttributeName": SORT_KEY_ATTR, "KeyType": "RANGE"},
                ],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true},
                "TimeToLiveSpecification": {"AttributeName": TTL_ATTR, "Enabled": true},
                "SSESpecification": {"SSEEnabled": true},
            },
        }),
    );
    resources.insert(
        "Bucket".into(),
        json!({
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "VersioningConfiguration": {"Status": "Enabled"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}},
                    ],
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": true,
                    "BlockPublicPolicy": true,
                    "IgnorePublicAcls": true,
                    "RestrictPublicBuckets": true,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "old-versions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": SCRATCH_DAYS},
                            "ExpiredObjectDeleteMarker": true,
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        },
                        {
                            "Id": "update-scratch",
                            "Status": "Enabled",
                            "Prefix": "updates/",
                            "ExpirationInDays": SCRATCH_DAYS,
                        },
                    ],
                },
            },
        }),
    );
    resources.insert(
        "BucketPolicy".into(),
        json!({
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": r#ref("Bucket"),
                "PolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [{
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [get_att("Bucket", "Arn"), sub("${Bucket.Arn}/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }],
                },
            },
        }),
    );
    resources.insert(
        "Key".into(),
        json!({
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": "Stackhouse: wraps the per-stack data keys of secrets",
                "EnableKeyRotation": true,
                "KeySpec": "SYMMETRIC_DEFAULT",
                "KeyUsage": "ENCRYPT_DECRYPT",
                // The account administers the key; functions get their rights through their
                // roles' IAM policies, which this statement enables.
                "KeyPolicy": {
                    "Version": POLICY_VERSION,
                    "Statement": [{
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": sub(ACCOUNT_ROOT)},
                        "Action": "kms:*",
                        "Resource": "*",
                    }],
                },
            },
        }),
    );
    resources.insert(
        "KeyAlias".into(),
        json!({
            "Type": "AWS::KMS::Alias",
            "Properties": {
                "AliasName": sub("alias/${AWS::StackName}"),
                "TargetKeyId": r#ref("Key"),
            },
        }),
    );
    for spec in default_queues() {
        resources.insert(
            dlq_id(&spec),
            json!({
                "Type": "AWS::SQS::Queue",
                // Queues hold only work in flight: they go with the stack.
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "QueueName": sub(&format!("${{AWS::StackName}}-{}", spec.dlq_name())),
                    // SQS's maximum: two weeks for an operator to look at a failed message.
                    "MessageRetentionPeriod": 1_209_600,
                    "SqsManagedSseEnabled": true,
                },
            }),
        );
        resources.insert(
            queue_id(&spec),
            json!({
                "Type": "AWS::SQS::Queue",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "QueueName": sub(&format!("${{AWS::StackName}}-{}", spec.name)),
                    // SQS's default, stated: a job not done in four days goes nowhere good.
                    "MessageRetentionPeriod": 345_600,
                    "VisibilityTimeout": spec.visibility_timeout.as_secs(),
                    "SqsManagedSseEnabled": true,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": get_att(&dlq_id(&spec), "Arn"),
                        "maxReceiveCount": spec.max_receives,
                    },
                },
            }),
        );
    }
    resources.insert(
        "HttpApi".into(),
        json!({
            "Type": "AWS::Serverless::HttpApi",
            "Properties": {
                "StageName": r#ref("StageName"),
                "FailOnWarnings": true,
            },
        }),
    );
}

fn event_value(event: &Event) -> (String, Value) {
    match event {
        Event::HttpApi { method, path } => (
            "Api".to_string(),
            json!({
                "Type": "HttpApi",
                "Properties": {"ApiId": r#ref("HttpApi"), "Method": method, "Path": path},
            }),
        ),
        Event::Schedule { every_seconds } => (
            "Schedule".to_string(),
            json!({
                "Type": "Schedule",
                "Properties": {"Schedule": rate_expression(*every_seconds)},
            }),
        ),
        Event::Sqs { queue, batch_size } => {
            let spec = default_queues().into_iter().find(|q| &q.name == queue);
            let id =
                spec.as_ref().map(queue_id).unwrap_or_else(|| format!("{}Queue", pascal(queue)));
            (
                "Queue".to_string(),
                json!({
                    "Type": "SQS",
                    "Properties": {
                        "Queue": get_att(&id, "Arn"),
                        "BatchSize": batch_size,
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    },
                }),
            )
        }
    }
}

fn function_resources(f: &FunctionSpec, resources: &mut Map<String, Value>) {
    let id = f.logical_id();
    let mut policy = statements(&f.needs);
    if f.token_auth {
        policy.push(bookkeeping_statement());
    }
    policy.push(statement("Logs", LOG_ACTIONS, vec![get_att(&f.log_group_id(), "Arn")]));
    resources.insert(
        f.log_group_id(),
        json!({
            "Type": "AWS::Logs::LogGroup",
            // Logs expire by retention anyway; they go with the stack.
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": sub(&format!("/aws/lambda/${{AWS::StackName}}/{}", f.name)),
                "RetentionInDays": r#ref("LogRetentionDays"),
            },
        }),
    );
    resources.insert(
        f.role_id(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": format!("Stackhouse {}: only what its needs declare", f.name),
                "AssumeRolePolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }],
                },
                "Policies": [{
                    "PolicyName": f.name,
                    "PolicyDocument": {"Version": POLICY_VERSION, "Statement": policy},
                }],
            },
        }),
    );
    let events: Map<String, Value> = f.events.iter().map(event_value).collect();
    let mut function = json!({
        "Type": "AWS::Serverless::Function",
        // SAM runs `cargo lambda build --release --bin <Binary>` in CodeUri and takes
        // `<CodeUri>/target/lambda/<Binary>/bootstrap`: so CodeUri is the workspace root.
        "Metadata": {
            "BuildMethod": "rust-cargolambda",
            "BuildProperties": {"Binary": f.name},
        },
        "Properties": {
            "Description": f.description,
            "CodeUri": "..",
            "Handler": "bootstrap",
            "Runtime": "provided.al2023",
            "Architectures": [r#ref("Architecture")],
            "MemorySize": f.memory_mb,
            "Timeout": f.timeout_seconds,
            "Role": get_att(&f.role_id(), "Arn"),
            // A log group of the template's own (retention, least privilege), so Lambda
            // never creates one on the side.
            "LoggingConfig": {"LogGroup": r#ref(&f.log_group_id())},
            "Environment": {"Variables": f.env},
            "Events": events,
        },
    });
    if f.events.is_empty() {
        // Invoked by hand only: SAM wants no `Events` at all rather than an empty map.
        if let Some(props) = function["Properties"].as_object_mut() {
            props.remove("Events");
        }
    }
    if f.events.iter().any(|e| matches!(e, Event::Schedule { .. })) {
        // A failed scheduled run is retried by the next tick, not by Lambda's two async
        // retries (which would overlap it).
        function["Properties"]["EventInvokeConfig"] = json!({"MaximumRetryAttempts": 0});
    }
    resources.insert(id, function);
}

const API_HOST: &str = "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}";

fn outputs() -> Value {
    let mut outputs = json!({
        "ApiUrl": {
            "Description": "Log in with: pulumi login <ApiUrl>",
            "Value": {"Fn::If": [
                "DefaultStage",
                sub(API_HOST),
                sub(&format!("{API_HOST}/${{StageName}}")),
            ]},
        },
        "TableName": {"Description": "DynamoDB table (STACKHOUSE_TABLE)", "Value": r#ref("Table")},
        "BucketName": {"Description": "S3 bucket (STACKHOUSE_BUCKET)", "Value": r#ref("Bucket")},
        "KmsKeyArn": {
            "Description": "KMS key (STACKHOUSE_KMS_KEY_ID)",
            "Value": get_att("Key", "Arn"),
        },
        "KmsKeyAlias": {"Description": "Alias of the KMS key", "Value": r#ref("KeyAlias")},
        "QueuePrefix": {
            "Description": "Prefix of the SQS queue names (STACKHOUSE_QUEUE_PREFIX)",
            "Value": sub("${AWS::StackName}-"),
        },
        "BackendEnv": {
            "Description": "Environment for running the local emulator against this \
                deployment (cargo run -p local-emulator -- --backend aws), e.g. to create the \
                first access token",
            "Value": sub(
                "AWS_REGION=${AWS::Region} STACKHOUSE_TABLE=${Table} STACKHOUSE_BUCKET=${Bucket} \
                 STACKHOUSE_KMS_KEY_ID=${Key.Arn} STACKHOUSE_QUEUE_PREFIX=${AWS::StackName}-"
            ),
        },
    });
    if let Value::Object(map) = &mut outputs {
        for spec in default_queues() {
            map.insert(
                format!("{}Url", queue_id(&spec)),
                json!({
                    "Description": format!("SQS queue {}", spec.name),
                    "Value": r#ref(&queue_id(&spec)),
                }),
            );
            map.insert(
                format!("{}Url", dlq_id(&spec)),
                json!({
                    "Description": format!("Dead-letter queue of {}", spec.name),
                    "Value": r#ref(&dlq_id(&spec)),
                }),
            );
        }
    }
    outputs
}

/// The template as a JSON value.
pub fn template_value() -> Value {
    let mut resources = Map::new();
    data_resources(&mut resources);
    for f in functions() {
        function_resources(&f, &mut resources);
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": format!(
            "Stackhouse: a self-hosted Pulumi backend on Lambda, DynamoDB, S3, SQS and KMS. \
             Generated from the route table by `{REGENERATE}`; do not edit."
        ),
        "Parameters": parameters(),
        "Conditions": {
            "DefaultStage": {"Fn::Equals": [r#ref("StageName"), "$default"]},
        },
        "Resources": resources,
        "Outputs": outputs(),
    })
}

/// Keys written first in any mapping, in this order: CloudFormation's conventional layout.
const KEY_ORDER: &[&str] = &[
    "Type",
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Parameters",
    "Conditions",
    "Resources",
    "Outputs",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Metadata",
    "Properties",
    "Version",
    "Sid",
    "Effect",
    "Principal",
    "Action",
    "Resource",
];

/// The template as YAML: the exact content of `infra/template.yaml`.
pub fn template() -> String {
    format!(
        "# Generated from the route table by `{REGENERATE}`. Do not edit.\n{}",
        yaml::to_string(&template_value(), KEY_ORDER)
    )
}

/// Where `current` first differs from `wanted`, as a one-line hint for a stale file:
/// `line N: has "…", wants "…"`. None when they are equal.
pub fn first_difference(current: &str, wanted: &str) -> Option<String> {
    if current == wanted {
        return None;
    }
    let (mut have, mut want) = (current.lines(), wanted.lines());
    let mut n = 0;
    loop {
        n += 1;
        match (have.next(), want.next()) {
            (Some(a), Some(b)) if a == b => continue,
            // Same lines: only line endings (or a final newline) differ.
            (None, None) => return Some("line endings differ".to_string()),
            (a, b) => {
                let show =
                    |l: Option<&str>| l.map_or("end of file".to_string(), |l| format!("{l:?}"));
                return Some(format!("line {n}: has {}, wants {}", show(a), show(b)));
            }
        }
    }
}
