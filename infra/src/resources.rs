//! The root template's own resources: parameters, the shared data resources (table, bucket,
//! queues, key, HTTP API, the event stream's WebSocket API) and outputs; and the
//! intrinsic-function helpers every template uses.

use serde_json::{json, Map, Value};
use stackhouse::ports::metadata::{PARTITION_KEY_ATTR, SORT_KEY_ATTR, TTL_ATTR};
use stackhouse::ports::queue::{default_queues, QueueSpec};

use super::functions::pascal;
use super::iam::{ACCOUNT_ROOT, POLICY_VERSION};

/// Days after which objects under `updates/` (checkpoint baselines, journals and events of
/// updates, which finish within hours) and noncurrent object versions are deleted.
pub const SCRATCH_DAYS: u32 = 30;

/// Logical id of a queue (`jobs` → `JobsQueue`).
pub fn queue_id(spec: &QueueSpec) -> String {
    format!("{}Queue", pascal(&spec.name))
}

/// Logical id of a queue's dead-letter queue (`jobs` → `JobsDeadLetterQueue`).
pub fn dlq_id(spec: &QueueSpec) -> String {
    format!("{}DeadLetterQueue", pascal(&spec.name))
}

/// The nested stacks' parameter holding a queue's ARN (`jobs` → `JobsQueueArn`).
pub fn queue_arn_parameter(spec: &QueueSpec) -> String {
    format!("{}Arn", queue_id(spec))
}

pub(super) fn r#ref(id: &str) -> Value {
    json!({ "Ref": id })
}

pub(super) fn get_att(id: &str, attr: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attr] })
}

pub(super) fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

pub(super) fn parameters() -> Value {
    let mut parameters = json!({
        "StageName": {
            "Type": "String",
            "Description": "Stage of the HTTP API. $default serves the API at the root of its \
                URL; a named stage serves it under /<stage> (the functions strip that prefix).",
            "Default": "$default",
            "AllowedPattern": "^(\\$default|[A-Za-z0-9_-]{1,128})$",
        },
        "WebSocketStageName": {
            "Type": "String",
            "Description": "Stage of the event stream's WebSocket API: its URL (the \
                WebSocketUrl output) ends in /<stage>. A WebSocket API has no $default stage.",
            "Default": "events",
            "AllowedPattern": "^[A-Za-z0-9_-]{1,128}$",
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
        "PointInTimeRecovery": {
            "Type": "String",
            "Description": "Continuous backups of the table (restore to any second of the last \
                35 days). On by default; Disabled saves their cost and gives up that restore.",
            "Default": "Enabled",
            "AllowedValues": ["Enabled", "Disabled"],
        },
        "BucketVersioning": {
            "Type": "String",
            "Description": "Versioning of the bucket (an overwritten or deleted object can be \
                restored). On by default; Suspended keeps existing versions and stops making new \
                ones.",
            "Default": "Enabled",
            "AllowedValues": ["Enabled", "Suspended"],
        },
        "ApiRateLimit": {
            "Type": "Number",
            "Description": "Requests per second the whole API accepts (API Gateway stage \
                throttling, above the per-token and per-organization limits, which each function \
                instance enforces within a tenth of their burst).",
            "Default": 1000,
            "MinValue": 1,
        },
        "ApiBurstLimit": {
            "Type": "Number",
            "Description": "Requests the whole API accepts at once (API Gateway stage throttling).",
            "Default": 2000,
            "MinValue": 1,
        },
        "AlarmEmail": {
            "Type": "String",
            "Description": "E-mail address the alarms notify (it must confirm the \
                subscription); empty for none (subscribe to the AlarmTopic output instead).",
            "Default": "",
        },
        "LogRetentionDays": {
            "Type": "Number",
            "Description": "Days to keep the functions' logs.",
            "Default": 30,
            // The values CloudWatch Logs accepts.
            "AllowedValues": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                1096, 1827, 2192, 2557, 2922, 3288, 3653],
        },
    });
    if let (Some(all), Value::Object(runner)) =
        (parameters.as_object_mut(), super::runner::parameters())
    {
        all.extend(runner);
    }
    parameters
}

pub(super) fn data_resources(resources: &mut Map<String, Value>) {
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
                "PointInTimeRecoverySpecification": {
                    "PointInTimeRecoveryEnabled": {"Fn::If": ["PointInTimeRecoveryOn", true, false]},
                },
                "TimeToLiveSpecification": {"AttributeName": TTL_ATTR, "Enabled": true},
                "SSESpecification": {"SSEEnabled": true},
                // The stream job (`job-feed-fanout`) needs to know which items were inserted,
                // and nothing of their content: keys only.
                "StreamSpecification": {"StreamViewType": "KEYS_ONLY"},
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
                "VersioningConfiguration": {"Status": r#ref("BucketVersioning")},
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
                        {
                            // Upload URLs live an hour and `job-artifact-gc` removes what was
                            // never completed; this is the backstop should the job not run.
                            "Id": "abandoned-uploads",
                            "Status": "Enabled",
                            "Prefix": stackhouse::service::artifacts::UPLOAD_PREFIX,
                            "ExpirationInDays": SCRATCH_DAYS,
                        },
                        {
                            // Open environment sessions last at most 7 days; their sealed
                            // values go a day after that.
                            "Id": "environment-sessions",
                            "Status": "Enabled",
                            "Prefix": stackhouse::service::environments::sessions::BLOB_PREFIX,
                            "ExpirationInDays": stackhouse::service::environments::sessions::MAX_SECONDS / 86_400 + 1,
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
                    }, {
                        // Presigned upload URLs (policy pack archives) are signed by functions
                        // that may write anywhere; a URL can only ever write a scratch upload,
                        // which `complete` checks before anything refers to it.
                        "Sid": "PresignedWritesOnlyToUploads",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "NotResource": sub(&format!(
                            "${{Bucket.Arn}}/{}*",
                            stackhouse::service::artifacts::UPLOAD_PREFIX
                        )),
                        "Condition": {"StringEquals": {"s3:authType": "REST-QUERY-STRING"}},
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
    // A plain HTTP API without an OpenAPI body: the nested stacks add one route each per
    // function. (A body-defined API, as SAM's `AWS::Serverless::HttpApi` makes, is re-imported
    // on every update of its own stack, which would delete the routes other stacks added.)
    resources.insert(
        "HttpApi".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": r#ref("AWS::StackName"),
                "Description": "Stackhouse: the Pulumi Cloud API",
                "ProtocolType": "HTTP",
            },
        }),
    );
    // Auto-deployed: a route a nested stack adds or changes is live without a deployment
    // resource that would have to depend on every route of every stack.
    resources.insert(
        "HttpApiStage".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {
                "ApiId": r#ref("HttpApi"),
                "StageName": r#ref("StageName"),
                "AutoDeploy": true,
                "DefaultRouteSettings": {
                    "ThrottlingRateLimit": r#ref("ApiRateLimit"),
                    "ThrottlingBurstLimit": r#ref("ApiBurstLimit"),
                },
            },
        }),
    );

    // The event stream's WebSocket API. Its routes, like the HTTP API's, come from the nested
    // stack of the event stream's domain (`$connect`, `$disconnect`, `$default`); a client's
    // message `{"action": …}` selects a route by its action, and every action we know goes to
    // `$default`.
    resources.insert(
        "WebSocketApi".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": sub("${AWS::StackName}-events"),
                "Description": "Stackhouse: the event stream over WebSocket",
                "ProtocolType": "WEBSOCKET",
                "RouteSelectionExpression": "$request.body.action",
            },
        }),
    );
    // Auto-deployed, as the HTTP API's stage, and throttled by the same parameters (they bound
    // connections and messages per second here).
    resources.insert(
        "WebSocketApiStage".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {
                "ApiId": r#ref("WebSocketApi"),
                "StageName": r#ref("WebSocketStageName"),
                "AutoDeploy": true,
                "DefaultRouteSettings": {
                    "ThrottlingRateLimit": r#ref("ApiRateLimit"),
                    "ThrottlingBurstLimit": r#ref("ApiBurstLimit"),
                },
            },
        }),
    );
}

/// The HTTP API's host name (`Fn::Sub` syntax).
pub(super) const API_DOMAIN: &str = "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}";

/// The WebSocket API's host name (`Fn::Sub` syntax).
pub(super) const WEBSOCKET_DOMAIN: &str =
    "${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}";

/// The API's URL, with the stage when it is not `$default`.
pub(super) fn api_url() -> Value {
    json!({"Fn::If": [
        "DefaultStage",
        sub(&format!("https://{API_DOMAIN}")),
        sub(&format!("https://{API_DOMAIN}/${{StageName}}")),
    ]})
}

pub(super) fn outputs() -> Value {
    let mut outputs = json!({
        "ApiUrl": {
            "Description": "Log in with: pulumi login <ApiUrl>",
            "Value": api_url(),
        },
        "WebSocketUrl": {
            "Description": "The event stream's WebSocket: wss://…?org=<org> with the header \
                Authorization: token <access token> (browsers: subprotocols stackhouse.events \
                and stackhouse.token.<access token>)",
            "Value": sub(&format!("wss://{WEBSOCKET_DOMAIN}/${{WebSocketApiStage}}")),
        },
        "ConsoleUrl": {
            "Description": "The web console (at the API's root: needs the $default stage)",
            "Value": sub(&format!("https://{API_DOMAIN}/")),
        },
        "ConsoleDomain": {
            "Description": "For the Pulumi CLI's links to the console: export \
                PULUMI_CONSOLE_DOMAIN=<ConsoleDomain>",
            "Value": sub(API_DOMAIN),
        },
        "TableName": {"Description": "DynamoDB table (STACKHOUSE_TABLE)", "Value": r#ref("Table")},
        "BucketName": {"Description": "S3 bucket (STACKHOUSE_BUCKET)", "Value": r#ref("Bucket")},
        "KmsKeyArn": {
            "Description": "KMS key (STACKHOUSE_KMS_KEY_ID)",
            "Value": get_att("Key", "Arn"),
        },
        "KmsKeyAlias": {"Description": "Alias of the KMS key", "Value": r#ref("KeyAlias")},
        "DashboardUrl": {
            "Description": "The CloudWatch dashboard of this deployment",
            "Value": sub(
                "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=\
                 ${AWS::Region}#dashboards:name=${Dashboard}"
            ),
        },
        "AlarmTopic": {
            "Description": "SNS topic the alarms notify (subscribe to it)",
            "Value": r#ref("AlarmTopic"),
        },
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
