//! The AWS SAM templates of Stackhouse, generated from the route table and the job table
//! (docs/ARCHITECTURE.md, The route table; The SAM template).
//!
//! [`functions`] lists every Lambda function with its events, its needs and its environment;
//! [`nested_stacks`] groups them by domain into nested stacks, each its own template
//! (`infra/stacks/<domain>.yaml`); [`template_value`] is the root template: the shared
//! resources (table, bucket, queues, key, HTTP API), one `AWS::CloudFormation::Stack` per
//! nested stack, and monitoring (dashboard, alarms). [`templates`] renders them all as the YAML
//! committed under `infra/`. `cargo run -p stackhouse-infra` rewrites the files and a test fails
//! when one is stale. Background jobs are [`FunctionSpec`]s with [`Event::Schedule`] (an
//! EventBridge rate), [`Event::Sqs`] (an SQS event source reporting partial batch failures) or
//! [`Event::Stream`] (the table's DynamoDB stream, filtered to the inserts the job names); the
//! event stream's socket routes are functions with an [`Event::WebSocket`] route on the root's
//! WebSocket API.
//!
//! Every function gets its own role whose only permissions are those its [`Needs`] imply
//! ([`statements`]) plus writing to its own log group: no managed policy, no `*`.

mod function;
mod functions;
mod iam;
mod monitoring;
pub mod openapi;
mod render;
mod resources;
pub mod runner;
mod stacks;
pub mod yaml;

pub use function::{stream_filter_pattern, STREAM_MAX_RETRIES};
pub use functions::{
    base_env, env_for, functions, pascal, rate_expression, Event, FunctionSpec, BLOB_MEMORY_MB,
    JOBS_STACK, MEMORY_MB, SOCKETS_STACK, TIMEOUT_SECONDS,
};
pub use iam::{
    bookkeeping_statement, dynamodb_actions, kms_actions, push_actions, push_resources,
    s3_bucket_actions, s3_object_actions, sqs_actions, statements, stream_statements, LOG_ACTIONS,
};
pub use monitoring::{API_5XX_MIN_REQUESTS, API_5XX_PERCENT, QUEUE_AGE_SECONDS};
pub use render::{
    first_difference, template, template_value, template_values, templates, REGENERATE,
};
pub use resources::{dlq_id, queue_arn_parameter, queue_id, SCRATCH_DAYS};
pub use stacks::{nested_stacks, shared_parameters, NestedStack, SharedParameter};
