//! One function's resources in its nested stack: the function, its role, its log group, and for
//! a route its HTTP API integration, route and invoke permission.
//!
//! Shared resources are parameters of the nested stack ([`crate::shared_parameters`]): the API
//! id `HttpApi`, the table and bucket names and ARNs, the key's ARN, each queue's ARN, the root
//! stack's name (`RootStackName`, which names the log groups) and the settings.

use serde_json::{json, Map, Value};
use stackhouse::ports::queue::default_queues;

use super::functions::{pascal, rate_expression, Event, FunctionSpec};
use super::iam::{bookkeeping_statement, statement, statements, LOG_ACTIONS, POLICY_VERSION};
use super::resources::{get_att, queue_arn_parameter, r#ref, sub};

/// API Gateway's longest wait for an HTTP API integration, in milliseconds.
const INTEGRATION_TIMEOUT_MS: u32 = 30_000;

/// The event sources SAM wires for a job (a schedule or a queue); routes get their own HTTP
/// resources from [`http_resources`] instead.
fn job_event(event: &Event) -> Option<(String, Value)> {
    match event {
        Event::HttpApi { .. } => None,
        Event::Schedule { every_seconds } => Some((
            "Schedule".to_string(),
            json!({
                "Type": "Schedule",
                "Properties": {"Schedule": rate_expression(*every_seconds)},
            }),
        )),
        Event::Sqs { queue, batch_size } => {
            let spec = default_queues().into_iter().find(|q| &q.name == queue);
            let parameter = spec
                .as_ref()
                .map(queue_arn_parameter)
                .unwrap_or_else(|| format!("{}QueueArn", pascal(queue)));
            Some((
                "Queue".to_string(),
                json!({
                    "Type": "SQS",
                    "Properties": {
                        "Queue": r#ref(&parameter),
                        "BatchSize": batch_size,
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    },
                }),
            ))
        }
    }
}

/// The execute-api ARN pattern of one route, for the invoke permission: any stage, the
/// route's method, its path with each `{param}` as `*`.
fn source_arn(method: &str, path: &str) -> Value {
    let path: Vec<&str> = path
        .split('/')
        .map(|segment| if segment.starts_with('{') { "*" } else { segment })
        .collect();
    sub(&format!(
        "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{HttpApi}}/*/{method}{}",
        path.join("/")
    ))
}

/// A route's integration (Lambda proxy, payload 2.0), its route key on the shared API and the
/// permission letting API Gateway invoke the function for that route only.
fn http_resources(f: &FunctionSpec, resources: &mut Map<String, Value>) {
    let id = f.logical_id();
    for event in &f.events {
        let Event::HttpApi { method, path } = event else { continue };
        resources.insert(
            format!("{id}Integration"),
            json!({
                "Type": "AWS::ApiGatewayV2::Integration",
                "Properties": {
                    "ApiId": r#ref("HttpApi"),
                    "IntegrationType": "AWS_PROXY",
                    "IntegrationUri": get_att(&id, "Arn"),
                    "PayloadFormatVersion": "2.0",
                    "TimeoutInMillis": INTEGRATION_TIMEOUT_MS,
                },
            }),
        );
        resources.insert(
            format!("{id}Route"),
            json!({
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {
                    "ApiId": r#ref("HttpApi"),
                    "RouteKey": format!("{method} {path}"),
                    "Target": sub(&format!("integrations/${{{id}Integration}}")),
                },
            }),
        );
        resources.insert(
            format!("{id}Permission"),
            json!({
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": r#ref(&id),
                    "Principal": "apigateway.amazonaws.com",
                    "SourceArn": source_arn(method, path),
                },
            }),
        );
    }
}

/// Every resource of one function, into its nested stack's `resources`.
pub(super) fn function_resources(f: &FunctionSpec, resources: &mut Map<String, Value>) {
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
                // Named after the root stack (the deployment), not the nested one.
                "LogGroupName": sub(&format!("/aws/lambda/${{RootStackName}}/{}", f.name)),
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
    let events: Map<String, Value> = f.events.iter().filter_map(job_event).collect();
    let mut function = json!({
        "Type": "AWS::Serverless::Function",
        // SAM runs `cargo lambda build --release --bin <Binary>` in CodeUri and takes
        // `<CodeUri>/target/lambda/<Binary>/bootstrap`: so CodeUri is the workspace root,
        // seen from `infra/stacks/`.
        "Metadata": {
            "BuildMethod": "rust-cargolambda",
            "BuildProperties": {"Binary": f.name},
        },
        "Properties": {
            "Description": f.description,
            "CodeUri": "../..",
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
    if events.is_empty() {
        // A route (its trigger is the HTTP resources below) or invoked by hand: SAM wants no
        // `Events` at all rather than an empty map.
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
    http_resources(f, resources);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_arn_names_the_route_with_wildcard_parameters() {
        assert_eq!(
            source_arn("GET", "/api/stacks/{org}/{project}/{stack}/export"),
            json!({"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:\
                ${AWS::AccountId}:${HttpApi}/*/GET/api/stacks/*/*/*/export"})
        );
    }
}
