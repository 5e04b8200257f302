//! Least-privilege IAM: the actions each access level of each port implies.

use serde_json::{json, Value};
use stackhouse::api::{Access, Needs};
use stackhouse::ports::queue::default_queues;
use stackhouse::service::item_keys::BOOKKEEPING_KEY_PREFIXES;

use super::resources::{get_att, queue_arn_parameter, r#ref, sub};

/// IAM actions on the table for an access level. Reads are `GetItem` and `Query` (strongly
/// consistent reads need no extra action). `TransactWriteItems` has no IAM action of its own:
/// each of its items is authorized as the matching single-item action, so writes add
/// `PutItem`, `DeleteItem`, `ConditionCheckItem` and `UpdateItem` (the port's `update`).
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
            "dynamodb:UpdateItem",
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

/// IAM actions on the KMS key: unwrapping data keys, and for writers generating them;
/// describing it (metadata only) for the deep health check.
pub fn kms_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::None => &[],
        Access::Read => &["kms:Decrypt", "kms:DescribeKey"],
        Access::Write => &["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
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

/// IAM actions on the WebSocket API's connections: posting frames to them and closing them
/// through the management API (`POST` and `DELETE` on `@connections/{id}`).
pub fn push_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::None => &[],
        Access::Read | Access::Write => &["execute-api:ManageConnections"],
    }
}

/// The connections of the WebSocket API's stage a pushing function may post to and close
/// (parameters `WebSocketApi` and `WebSocketStage` of its nested stack), and nothing else of
/// the API.
pub fn push_resources() -> Vec<Value> {
    ["POST", "DELETE"]
        .iter()
        .map(|verb| {
            sub(&format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:\
                 ${{WebSocketApi}}/${{WebSocketStage}}/{verb}/@connections/*"
            ))
        })
        .collect()
}

/// What Lambda's event source mapping reads the table's stream with, under the function's
/// role (the template names the role, so SAM adds nothing to it): the records of the stream
/// (parameter `TableStreamArn`), and listing the table's streams, which is no call on one
/// stream and so is granted on the table's streams (`<table ARN>/stream/*`, as DynamoDB's
/// documentation scopes it), not on any other table's.
pub fn stream_statements() -> Vec<Value> {
    vec![
        statement(
            "Stream",
            &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            vec![r#ref("TableStreamArn")],
        ),
        statement("StreamList", &["dynamodb:ListStreams"], vec![sub("${TableArn}/stream/*")]),
    ]
}

/// Writing to the function's own log group (it is created by the template, so no
/// `logs:CreateLogGroup`).
pub const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];

pub(super) fn statement(sid: &str, actions: &[&str], resources: Vec<Value>) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
    })
}

/// The IAM statements a function with these needs gets, each on its resources only (named
/// by the parameters of the function's nested stack: `TableArn`, `BucketArn`, `KeyArn`, one
/// `<Queue>Arn` per queue, `WebSocketApi` and `WebSocketStage`).
pub fn statements(needs: &Needs) -> Vec<Value> {
    let mut out = Vec::new();
    let table = dynamodb_actions(needs.meta);
    if !table.is_empty() {
        out.push(statement("Table", table, vec![r#ref("TableArn")]));
    }
    let bucket = s3_bucket_actions(needs.blobs);
    if !bucket.is_empty() {
        out.push(statement("Bucket", bucket, vec![r#ref("BucketArn")]));
    }
    let objects = s3_object_actions(needs.blobs);
    if !objects.is_empty() {
        out.push(statement("Objects", objects, vec![sub("${BucketArn}/*")]));
    }
    let queue = sqs_actions(needs.queue);
    if !queue.is_empty() {
        let queues = default_queues().iter().map(|q| r#ref(&queue_arn_parameter(q))).collect();
        out.push(statement("Queues", queue, queues));
    }
    let key = kms_actions(needs.keys);
    if !key.is_empty() {
        out.push(statement("Key", key, vec![r#ref("KeyArn")]));
    }
    let push = push_actions(needs.push);
    if !push.is_empty() {
        out.push(statement("Push", push, push_resources()));
    }
    if needs.launch != Access::None {
        // The runner's project, in the function's own nested stack (`crate::runner`).
        let project = get_att(super::runner::PROJECT_ID, "Arn");
        out.push(statement("Runner", super::runner::START_ACTIONS, vec![project]));
    }
    out
}

/// The writes a token-authenticated function may make whatever its needs: `PutItem` and
/// `UpdateItem` on items whose partition key matches [`BOOKKEEPING_KEY_PREFIXES`] (a token's
/// last-used time, rate-limit buckets), enforced by IAM through `dynamodb:LeadingKeys`.
pub fn bookkeeping_statement() -> Value {
    json!({
        "Sid": "Bookkeeping",
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
        "Resource": [r#ref("TableArn")],
        "Condition": {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": BOOKKEEPING_KEY_PREFIXES},
        },
    })
}

pub(super) const POLICY_VERSION: &str = "2012-10-17";

pub(super) const ACCOUNT_ROOT: &str = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root";
