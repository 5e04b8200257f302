//! What an operator watches (README, Operating Stackhouse): a CloudWatch dashboard and alarms
//! in the root template, notifying an SNS topic (and an e-mail address when one is given).
//!
//! Alarms: the API's 5xx rate; each dead-letter queue not empty; each work queue's oldest
//! message too old (jobs not keeping up); the lease reaper failing (lapsed updates keep their
//! stacks locked); Lambda and DynamoDB throttles.

use serde_json::{json, Map, Value};
use stackhouse::ports::queue::default_queues;
use stackhouse::telemetry::metrics::NAMESPACE;

use super::resources::{dlq_id, queue_id, r#ref, sub};

/// Alarm when more than this percentage of the API's answers in 5 minutes are 5xx.
pub const API_5XX_PERCENT: u32 = 5;

/// Below this many requests in 5 minutes the 5xx rate does not alarm (one failure out of three
/// requests is noise, not an outage).
pub const API_5XX_MIN_REQUESTS: u32 = 20;

/// Alarm when a work queue's oldest message is older than this, in seconds.
pub const QUEUE_AGE_SECONDS: u32 = 900;

/// Consecutive 5-minute periods the lease reaper must fail in before its alarm fires.
pub const REAPER_FAILED_PERIODS: u32 = 3;

const PERIOD: u32 = 300;

fn alarm_actions() -> Value {
    json!({
        "AlarmActions": [r#ref("AlarmTopic")],
        "OKActions": [r#ref("AlarmTopic")],
    })
}

fn alarm(description: &str, properties: Value) -> Value {
    let mut props = json!({
        "AlarmDescription": description,
        "ComparisonOperator": "GreaterThanThreshold",
        // No data (no traffic, an empty queue's silence) is not a failure.
        "TreatMissingData": "notBreaching",
    });
    if let (Some(p), Some(extra), Some(actions)) =
        (props.as_object_mut(), properties.as_object(), alarm_actions().as_object())
    {
        p.extend(extra.clone());
        p.extend(actions.clone());
    }
    json!({"Type": "AWS::CloudWatch::Alarm", "Properties": props})
}

fn metric(namespace: &str, name: &str, dimensions: Value, stat: &str) -> Value {
    json!({
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
        "Period": PERIOD,
        "Stat": stat,
    })
}

fn api_dimensions() -> Value {
    json!([
        {"Name": "ApiId", "Value": r#ref("HttpApi")},
        {"Name": "Stage", "Value": r#ref("StageName")},
    ])
}

fn queue_dimensions(name: &str) -> Value {
    json!([{"Name": "QueueName", "Value": sub(&format!("${{AWS::StackName}}-{name}"))}])
}

/// The alarms, the topic they notify, its optional e-mail subscription, and the dashboard.
pub(super) fn monitoring_resources(resources: &mut Map<String, Value>) {
    resources.insert(
        "AlarmTopic".into(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Properties": {"DisplayName": sub("Stackhouse ${AWS::StackName} alarms")},
        }),
    );
    resources.insert(
        "AlarmEmailSubscription".into(),
        json!({
            "Type": "AWS::SNS::Subscription",
            "Condition": "AlarmEmailSet",
            "Properties": {
                "TopicArn": r#ref("AlarmTopic"),
                "Protocol": "email",
                "Endpoint": r#ref("AlarmEmail"),
            },
        }),
    );
    resources.insert(
        "Api5xxRateAlarm".into(),
        alarm(
            &format!(
                "More than {API_5XX_PERCENT}% of the API's answers were 5xx in 5 minutes (with \
                 at least {API_5XX_MIN_REQUESTS} requests): see the functions' logs"
            ),
            json!({
                "EvaluationPeriods": 1,
                "Threshold": API_5XX_PERCENT,
                "Metrics": [
                    {
                        "Id": "rate",
                        "Label": "5xx %",
                        "Expression": format!(
                            "IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * errors / requests, 0)"
                        ),
                        "ReturnData": true,
                    },
                    {
                        "Id": "errors",
                        "MetricStat": metric("AWS/ApiGateway", "5xx", api_dimensions(), "Sum"),
                        "ReturnData": false,
                    },
                    {
                        "Id": "requests",
                        "MetricStat": metric("AWS/ApiGateway", "Count", api_dimensions(), "Sum"),
                        "ReturnData": false,
                    },
                ],
            }),
        ),
    );
    for spec in default_queues() {
        resources.insert(
            format!("{}NotEmptyAlarm", dlq_id(&spec)),
            alarm(
                &format!(
                    "Messages of queue {} failed too often and wait in its dead-letter queue: \
                     `local-emulator dlq list --queue {}`, then redrive or drop them",
                    spec.name, spec.name
                ),
                json!({
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": queue_dimensions(&spec.dlq_name()),
                    "Statistic": "Maximum",
                    "Period": PERIOD,
                    "EvaluationPeriods": 1,
                    "Threshold": 0,
                }),
            ),
        );
        resources.insert(
            format!("{}BacklogAlarm", queue_id(&spec)),
            alarm(
                &format!(
                    "The oldest message of queue {} waited over {QUEUE_AGE_SECONDS} s: its job \
                     is failing or not keeping up",
                    spec.name
                ),
                json!({
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": queue_dimensions(&spec.name),
                    "Statistic": "Maximum",
                    "Period": PERIOD,
                    "EvaluationPeriods": 1,
                    "Threshold": QUEUE_AGE_SECONDS,
                }),
            ),
        );
    }
    resources.insert(
        "ReaperBacklogAlarm".into(),
        alarm(
            &format!(
                "job-lease-reaper failed in {REAPER_FAILED_PERIODS} consecutive 5-minute \
                 periods: updates whose CLI died keep their stacks locked"
            ),
            json!({
                "Namespace": NAMESPACE,
                "MetricName": "Failures",
                "Dimensions": [{"Name": "Job", "Value": "job-lease-reaper"}],
                "Statistic": "Sum",
                "Period": PERIOD,
                "EvaluationPeriods": REAPER_FAILED_PERIODS,
                "Threshold": 0,
            }),
        ),
    );
    resources.insert(
        "LambdaThrottlesAlarm".into(),
        alarm(
            "Lambda throttled invocations in this account and region (the functions share its \
             concurrency): raise the concurrency quota or reserve some for the API",
            json!({
                "Namespace": "AWS/Lambda",
                "MetricName": "Throttles",
                "Statistic": "Sum",
                "Period": PERIOD,
                "EvaluationPeriods": 1,
                "Threshold": 0,
            }),
        ),
    );
    let table = json!([{"Name": "TableName", "Value": r#ref("Table")}]);
    resources.insert(
        "TableThrottlesAlarm".into(),
        alarm(
            "DynamoDB throttled reads or writes of the table",
            json!({
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "Metrics": [
                    {
                        "Id": "throttles",
                        "Label": "Throttle events",
                        "Expression": "reads + writes",
                        "ReturnData": true,
                    },
                    {
                        "Id": "reads",
                        "MetricStat": metric("AWS/DynamoDB", "ReadThrottleEvents", table.clone(), "Sum"),
                        "ReturnData": false,
                    },
                    {
                        "Id": "writes",
                        "MetricStat": metric("AWS/DynamoDB", "WriteThrottleEvents", table, "Sum"),
                        "ReturnData": false,
                    },
                ],
            }),
        ),
    );
    resources.insert(
        "Dashboard".into(),
        json!({
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": sub("${AWS::StackName}"),
                "DashboardBody": sub(&dashboard_body()),
            },
        }),
    );
}

/// One widget of the dashboard: a time series of `metrics` (CloudWatch's array form).
fn widget(title: &str, x: u32, y: u32, metrics: Value) -> Value {
    json!({
        "type": "metric",
        "x": x, "y": y, "width": 12, "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stat": "Sum",
            "period": PERIOD,
            "metrics": metrics,
        },
    })
}

/// A search expression row: every metric matching `expression` (one line per function or job).
fn search(expression: &str, stat: &str) -> Value {
    json!([{"expression": format!("SEARCH('{expression}', '{stat}', {PERIOD})")}])
}

/// The dashboard's JSON, with `${…}` for `Fn::Sub` to fill in.
fn dashboard_body() -> String {
    let api = ["ApiId", "${HttpApi}", "Stage", "${StageName}"];
    let mut queue_rows = Vec::new();
    let mut dlq_rows = Vec::new();
    for spec in default_queues() {
        let name = format!("${{AWS::StackName}}-{}", spec.name);
        queue_rows.push(json!([
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name, {"stat": "Maximum"}
        ]));
        queue_rows.push(json!([
            "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", name,
            {"stat": "Maximum", "yAxis": "right"}
        ]));
        dlq_rows.push(json!([
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
            format!("${{AWS::StackName}}-{}", spec.dlq_name()), {"stat": "Maximum"}
        ]));
    }
    let ns = NAMESPACE;
    let widgets = json!([
        widget(
            "API requests and errors",
            0,
            0,
            json!([
                ["AWS/ApiGateway", "Count", api[0], api[1], api[2], api[3]],
                ["AWS/ApiGateway", "4xx", api[0], api[1], api[2], api[3]],
                ["AWS/ApiGateway", "5xx", api[0], api[1], api[2], api[3]],
            ])
        ),
        widget(
            "API latency (ms)",
            12,
            0,
            json!([
                ["AWS/ApiGateway", "Latency", api[0], api[1], api[2], api[3], {"stat": "p50"}],
                ["AWS/ApiGateway", "Latency", api[0], api[1], api[2], api[3], {"stat": "p99"}],
            ])
        ),
        widget(
            "5xx by function",
            0,
            6,
            search(&format!("{{{ns},Function}} MetricName=\"Status5xx\""), "Sum")
        ),
        widget(
            "p99 latency by function (ms)",
            12,
            6,
            search(&format!("{{{ns},Function}} MetricName=\"Latency\""), "p99")
        ),
        widget("Work queues: depth, age of oldest (s)", 0, 12, json!(queue_rows)),
        widget("Dead-letter queues", 12, 12, json!(dlq_rows)),
        widget(
            "Job failures",
            0,
            18,
            search(&format!("{{{ns},Job}} MetricName=\"Failures\""), "Sum")
        ),
        widget(
            "Leases reaped",
            12,
            18,
            json!([
                [ns, "Reaped", "Job", "job-lease-reaper"],
                [ns, "Errors", "Job", "job-lease-reaper"],
            ])
        ),
        widget(
            "Lambda throttles and errors (account)",
            0,
            24,
            json!([["AWS/Lambda", "Throttles"], ["AWS/Lambda", "Errors"],])
        ),
        widget(
            "Table throttles",
            12,
            24,
            json!([
                ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", "${Table}"],
                ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", "${Table}"],
            ])
        ),
        widget(
            "Per update: journal entries, deployment bytes (p99)",
            0,
            30,
            json!([
                [{"expression": format!("SEARCH('{{{ns},Operation}} MetricName=\"JournalEntries\"', 'p99', {PERIOD})")}],
                [{"expression": format!("SEARCH('{{{ns},Operation}} MetricName=\"DeploymentBytes\"', 'p99', {PERIOD})"), "yAxis": "right"}],
            ])
        ),
        widget(
            "Webhook deliveries by outcome",
            12,
            30,
            search(&format!("{{{ns},Outcome}} MetricName=\"WebhookDeliveries\""), "Sum")
        ),
    ]);
    json!({"widgets": widgets}).to_string()
}
