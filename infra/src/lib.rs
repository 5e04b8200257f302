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

mod functions;
mod iam;
pub mod openapi;
mod render;
mod resources;
pub mod yaml;

pub use functions::{
    base_env, functions, pascal, rate_expression, Event, FunctionSpec, BLOB_MEMORY_MB, MEMORY_MB,
    TIMEOUT_SECONDS,
};
pub use iam::{
    bookkeeping_statement, dynamodb_actions, kms_actions, s3_bucket_actions, s3_object_actions,
    sqs_actions, statements, LOG_ACTIONS,
};
pub use render::{first_difference, template, template_value, REGENERATE};
pub use resources::{dlq_id, queue_id, SCRATCH_DAYS};
