//! One function's resources in its nested stack: the function, its role, its log group, and for
//! a route its HTTP API integration, route and invoke permission (for a socket route the same
//! on the WebSocket API).
//!
//! Shared resources are parameters of the nested stack ([`crate::shared_parameters`]): the API
//! ids `HttpApi` and `WebSocketApi` (with its stage `WebSocketStage`), the table and bucket
//! names and ARNs, the table's stream, the key's ARN, each queue's ARN, the root stack's name
//! (`RootStackName`, which names the log groups) and the settings.

use serde_json::{json, Map, Value};
use stackhouse::ports::queue::default_queues;

use super::functions::{pascal, rate_expression, Event, FunctionSpec};
use super::iam::{
    bookkeeping_statement, statement, statements, stream_statements, LOG_ACTIONS, POLICY_VERSION,
};
use super::resources::{get_att, queue_arn_parameter, r#ref, sub};

/// API Gateway's longest wait for an HTTP API integration, in milliseconds.
const INTEGRATION_TIMEOUT_MS: u32 = 30_000;

/// API Gateway's longest wait for a WebSocket API integration, in milliseconds.
const SOCKET_INTEGRATION_TIMEOUT_MS: u32 = 29_000;

/// How often Lambda retries a failed batch of the table's stream before it drops it. Bounded,
/// so one organization whose fan-out keeps failing cannot hold up its shard (and every other
/// organization's events behind it) for the stream's whole 24 hours; dropping loses nothing,
/// because the next event of that organization triggers a run that sends everything after its
/// fan-out cursor (docs/ARCHITECTURE.md, Background jobs).
pub const STREAM_MAX_RETRIES: u32 = 5;

/// An event pattern of a stream's filter: inserts whose `pk` and `sk` start with the prefixes.
pub fn stream_filter_pattern(pk: &str, sk: &str) -> String {
    json!({
        "eventName": ["INSERT"],
        "dynamodb": {"Keys": {
            "pk": {"S": [{"prefix": pk}]},
            "sk": {"S": [{"prefix": sk}]},
        }},
    })
    .to_string()
}

/// The event sources SAM wires for a job (a schedule, a queue or the table's stream); routes
/// get their own API resources from [`http_resources`] and [`socket_resources`] instead.
fn job_event(event: &Event) -> Option<(String, Value)> {
    match event {
        Event::HttpApi { .. } | Event::WebSocket { .. } => None,
        Event::Stream { inserts, batch_size } => {
            let filters: Vec<Value> = inserts
                .iter()
                .map(|(pk, sk)| json!({"Pattern": stream_filter_pattern(pk, sk)}))
                .collect();
            Some((
                "Stream".to_string(),
                json!({
                    "Type": "DynamoDB",
                    "Properties": {
                        "Stream": r#ref("TableStreamArn"),
                        // New writes only: what was written before the function existed has
                        // no connection waiting for it.
                        "StartingPosition": "LATEST",
                        "BatchSize": batch_size,
                        // Lambda drops the other records before invoking (and bills nothing
                        // for them): the function is never woken by its own writes.
                        "FilterCriteria": {"Filters": filters},
                        "MaximumRetryAttempts": STREAM_MAX_RETRIES,
                        // A failing batch is split until the failing organization's records
                        // are alone, so the others get through.
                        "BisectBatchOnFunctionError": true,
                    },
                }),
            ))
        }
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

/// API Gateway's permission to invoke function `id` for requests matching `source_arn`.
fn invoke_permission(id: &str, source_arn: Value) -> Value {
    json!({
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": r#ref(id),
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": source_arn,
        },
    })
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
/// A function with several routes (the console's) has one integration and a route and a
/// permission per route: `{id}Route`, `{id}Route2`, ….
fn http_resources(f: &FunctionSpec, resources: &mut Map<String, Value>) {
    let id = f.logical_id();
    let routes = f.events.iter().filter_map(|e| match e {
        Event::HttpApi { method, path } => Some((method, path)),
        _ => None,
    });
    for (n, (method, path)) in routes.enumerate() {
        let suffix = if n == 0 { String::new() } else { (n + 1).to_string() };
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
            format!("{id}Route{suffix}"),
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
            format!("{id}Permission{suffix}"),
            invoke_permission(&id, source_arn(method, path)),
        );
    }
}

/// The ARN of one WebSocket route, for the invoke permission: any stage, that route key.
fn socket_source_arn(route_key: &str) -> Value {
    sub(&format!(
        "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{WebSocketApi}}/*/{route_key}"
    ))
}

/// A socket route's integration (Lambda proxy), its route on the WebSocket API and the
/// permission letting API Gateway invoke the function for that route only. `$connect` has no
/// authorizer: the function checks the access token itself, as an HTTP route does, and refuses
/// the connection with Pulumi's error body.
fn socket_resources(f: &FunctionSpec, resources: &mut Map<String, Value>) {
    let id = f.logical_id();
    for event in &f.events {
        let Event::WebSocket { route_key } = event else { continue };
        resources.insert(
            format!("{id}Integration"),
            json!({
                "Type": "AWS::ApiGatewayV2::Integration",
                "Properties": {
                    "ApiId": r#ref("WebSocketApi"),
                    "IntegrationType": "AWS_PROXY",
                    // A WebSocket API invokes Lambda through the invocation URI, not the ARN.
                    "IntegrationUri": sub(&format!(
                        "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/\
                         2015-03-31/functions/${{{id}.Arn}}/invocations"
                    )),
                    "TimeoutInMillis": SOCKET_INTEGRATION_TIMEOUT_MS,
                },
            }),
        );
        resources.insert(
            format!("{id}Route"),
            json!({
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {
                    "ApiId": r#ref("WebSocketApi"),
                    "RouteKey": route_key,
                    "AuthorizationType": "NONE",
                    "OperationName": f.name,
                    "Target": sub(&format!("integrations/${{{id}Integration}}")),
                },
            }),
        );
        resources.insert(
            format!("{id}Permission"),
            invoke_permission(&id, socket_source_arn(route_key)),
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
    if f.events.iter().any(|e| matches!(e, Event::Stream { .. })) {
        policy.extend(stream_statements());
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
        // A route (its trigger is the API resources below) or invoked by hand: SAM wants no
        // `Events` at all rather than an empty map.
        if let Some(props) = function["Properties"].as_object_mut() {
            props.remove("Events");
        }
    }
    if let Some(mb) = f.ephemeral_mb {
        function["Properties"]["EphemeralStorage"] = json!({"Size": mb});
    }
    if f.events.iter().any(|e| matches!(e, Event::Schedule { .. })) {
        // A failed scheduled run is retried by the next tick, not by Lambda's two async
        // retries (which would overlap it).
        function["Properties"]["EventInvokeConfig"] = json!({"MaximumRetryAttempts": 0});
    }
    resources.insert(id, function);
    http_resources(f, resources);
    socket_resources(f, resources);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_source_arn_names_its_route_key_on_any_stage() {
        assert_eq!(
            socket_source_arn("$connect"),
            json!({"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:\
                ${AWS::AccountId}:${WebSocketApi}/*/$connect"})
        );
    }

    #[test]
    fn a_stream_filter_matches_inserts_by_key_prefixes() {
        let pattern: Value = serde_json::from_str(&stream_filter_pattern("FEED#", "E#")).unwrap();
        assert_eq!(pattern["eventName"], json!(["INSERT"]));
        assert_eq!(pattern["dynamodb"]["Keys"]["pk"]["S"], json!([{"prefix": "FEED#"}]));
        assert_eq!(pattern["dynamodb"]["Keys"]["sk"]["S"], json!([{"prefix": "E#"}]));
    }

    #[test]
    fn search_functions_get_room_for_an_index_in_tmp() {
        let room: Vec<(&str, Option<u32>)> = crate::functions::functions()
            .iter()
            .filter(|f| f.ephemeral_mb.is_some())
            .map(|f| (f.name, f.ephemeral_mb))
            .collect();
        let names: Vec<&str> = room.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "org-search-resources",
                "org-search-resources-v2",
                "org-search-resources-export",
                "org-search-resources-autocomplete",
                "job-search-index",
                "job-search-reindex"
            ]
        );
        assert!(room.iter().all(|(_, mb)| *mb >= Some(2048)));
    }

    #[test]
    fn a_source_arn_names_the_route_with_wildcard_parameters() {
        assert_eq!(
            source_arn("GET", "/api/stacks/{org}/{project}/{stack}/export"),
            json!({"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:\
                ${AWS::AccountId}:${HttpApi}/*/GET/api/stacks/*/*/*/export"})
        );
    }
}
