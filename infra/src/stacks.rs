//! Nested stacks: the functions deploy in one nested stack per domain (a route's domain is its
//! handler's module; the jobs have their own), so the deployment stays under CloudFormation's
//! 500 resources per stack however many routes the table grows (docs/ARCHITECTURE.md, The SAM
//! template).
//!
//! The root template owns what every function shares (table and its stream, bucket, key,
//! queues, HTTP API, WebSocket API and its stage) and passes it to each nested stack as
//! parameters: [`shared_parameters`] lists them with the
//! value the root passes, and a nested stack declares exactly those its resources refer to.
//! A function never moves between stacks unless its route changes domain (moving one needs two
//! deployments: an HTTP API refuses a second route with the same key while the old stack still
//! holds it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use stackhouse::ports::queue::default_queues;
use stackhouse::ports::Access;

use super::function::function_resources;
use super::functions::{functions, pascal, FunctionSpec};
use super::render::REGENERATE;
use super::resources::{api_url, get_att, queue_arn_parameter, queue_id, r#ref, sub};

/// A parameter of the nested stacks: a shared resource or setting of the root template.
#[derive(Debug, Clone)]
pub struct SharedParameter {
    /// Its name, in the nested stack (and, for settings, in the root template).
    pub name: String,
    /// CloudFormation parameter type.
    pub kind: &'static str,
    /// What it holds.
    pub description: String,
    /// What the root template passes.
    pub value: Value,
}

fn shared(name: &str, kind: &'static str, description: &str, value: Value) -> SharedParameter {
    SharedParameter { name: name.to_string(), kind, description: description.to_string(), value }
}

/// Every parameter a nested stack may declare, with the value the root template gives it.
pub fn shared_parameters() -> Vec<SharedParameter> {
    let mut out = vec![
        shared("Table", "String", "Name of the DynamoDB table", r#ref("Table")),
        shared("TableArn", "String", "ARN of the DynamoDB table", get_att("Table", "Arn")),
        shared("Bucket", "String", "Name of the S3 bucket", r#ref("Bucket")),
        shared("BucketArn", "String", "ARN of the S3 bucket", get_att("Bucket", "Arn")),
        shared("KeyArn", "String", "ARN of the KMS key", get_att("Key", "Arn")),
        shared("QueuePrefix", "String", "Prefix of the SQS queue names", sub("${AWS::StackName}-")),
        shared(
            "RootStackName",
            "String",
            "Name of the root stack (names the log groups)",
            r#ref("AWS::StackName"),
        ),
        shared("HttpApi", "String", "Id of the HTTP API", r#ref("HttpApi")),
        shared(
            "TableStreamArn",
            "String",
            "ARN of the DynamoDB table's stream",
            get_att("Table", "StreamArn"),
        ),
        shared(
            "WebSocketApi",
            "String",
            "Id of the event stream's WebSocket API",
            r#ref("WebSocketApi"),
        ),
        // The stage resource, not the parameter naming it: functions that push are created
        // once the stage (where their management API answers) exists.
        shared(
            "WebSocketStage",
            "String",
            "Stage of the WebSocket API",
            r#ref("WebSocketApiStage"),
        ),
    ];
    for spec in default_queues() {
        out.push(shared(
            &queue_arn_parameter(&spec),
            "String",
            &format!("ARN of the SQS queue {}", spec.name),
            get_att(&queue_id(&spec), "Arn"),
        ));
    }
    out.push(shared("ApiUrl", "String", "URL of the API (the runner's Stackhouse)", api_url()));
    for (name, kind) in [
        ("Architecture", "String"),
        ("LogLevel", "String"),
        ("HistoryRetention", "String"),
        ("LogRetentionDays", "Number"),
        ("RunnerImage", "String"),
        ("RunnerComputeType", "String"),
        ("RunnerTimeoutMinutes", "Number"),
        ("PulumiVersion", "String"),
    ] {
        out.push(shared(name, kind, &format!("The root template's {name}"), r#ref(name)));
    }
    out
}

/// One nested stack: a domain's functions.
#[derive(Debug, Clone)]
pub struct NestedStack {
    /// The domain (`stacks`, `updates`, … `jobs`).
    pub name: &'static str,
    /// Its functions, in table order.
    pub functions: Vec<FunctionSpec>,
}

impl NestedStack {
    /// Logical id in the root template: `updates` → `UpdatesFunctions`.
    pub fn logical_id(&self) -> String {
        format!("{}Functions", pascal(self.name))
    }

    /// Its template's path, relative to `infra/` (and to the root template).
    pub fn file(&self) -> String {
        format!("stacks/{}.yaml", self.name)
    }

    /// Its template.
    pub fn template_value(&self) -> Value {
        let mut resources = Map::new();
        for f in &self.functions {
            function_resources(f, &mut resources);
        }
        // The deployment runner's project beside the function that starts its builds.
        if self.functions.iter().any(|f| f.needs.launch != Access::None) {
            super::runner::resources(&mut resources);
        }
        let resources = Value::Object(resources);
        let used = referenced_names(&resources);
        let parameters: Map<String, Value> = shared_parameters()
            .into_iter()
            .filter(|p| used.contains(&p.name))
            .map(|p| (p.name, json!({"Type": p.kind, "Description": p.description})))
            .collect();
        json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Transform": "AWS::Serverless-2016-10-31",
            "Description": format!(
                "Stackhouse: the {} functions, a nested stack of infra/template.yaml. \
                 Generated from the route table by `{REGENERATE}`; do not edit.",
                self.name
            ),
            "Parameters": parameters,
            "Resources": resources,
        })
    }

    /// Its resource in the root template, passing exactly the parameters it declares.
    pub fn stack_resource(&self) -> Value {
        let template = self.template_value();
        let declared = template["Parameters"].as_object().cloned().unwrap_or_default();
        let parameters: Map<String, Value> = shared_parameters()
            .into_iter()
            .filter(|p| declared.contains_key(&p.name))
            .map(|p| (p.name, p.value))
            .collect();
        json!({
            "Type": "AWS::CloudFormation::Stack",
            // cfn-lint warns that a local TemplateURL needs packaging: `sam deploy` packages.
            "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W3002"]}}},
            "Properties": {
                // A local path: `sam build` builds the functions inside, `sam deploy` uploads it.
                "TemplateURL": self.file(),
                "Parameters": parameters,
            },
        })
    }
}

/// Every nested stack, by name: each function of [`functions`] in the stack of its domain.
pub fn nested_stacks() -> Vec<NestedStack> {
    let mut by_name: BTreeMap<&'static str, Vec<FunctionSpec>> = BTreeMap::new();
    for f in functions() {
        by_name.entry(f.stack).or_default().push(f);
    }
    by_name.into_iter().map(|(name, functions)| NestedStack { name, functions }).collect()
}

/// The names a template refers to: `Ref` targets and the `${Name}` / `${Name.Attr}` of
/// `Fn::Sub` strings.
pub(super) fn referenced_names(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_references(v, &mut out);
    out
}

fn collect_references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("Ref", Value::String(name)) => {
                        out.insert(name.clone());
                    }
                    ("Fn::Sub", Value::String(text)) => sub_names(text, out),
                    _ => collect_references(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

fn sub_names(text: &str, out: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find('}') else { return };
        let name = &rest[..end];
        // `${!Literal}` is no reference.
        if !name.starts_with('!') {
            out.insert(name.split('.').next().unwrap_or(name).to_string());
        }
        rest = &rest[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_refs_and_subs() {
        let v = json!({"a": [{"Ref": "Table"}, {"Fn::Sub": "x${BucketArn}/*${Key.Arn}${!Lit}"}]});
        let names: Vec<String> = referenced_names(&v).into_iter().collect();
        assert_eq!(names, ["BucketArn", "Key", "Table"]);
    }
}
