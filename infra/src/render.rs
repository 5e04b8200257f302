//! The templates as values and as the committed YAML files, and the drift check.

use serde_json::{json, Map, Value};

use crate::yaml;

use super::monitoring::monitoring_resources;
use super::resources::{data_resources, outputs, parameters, r#ref};
use super::stacks::nested_stacks;

/// The command that regenerates `infra/template.yaml` and `infra/stacks/`.
pub const REGENERATE: &str = "cargo run -p stackhouse-infra";

/// The root template as a JSON value: the shared resources, one nested stack per domain,
/// monitoring. (It has no SAM resource of its own: the nested stacks do.)
pub fn template_value() -> Value {
    let mut resources = Map::new();
    data_resources(&mut resources);
    for stack in nested_stacks() {
        resources.insert(stack.logical_id(), stack.stack_resource());
    }
    monitoring_resources(&mut resources);
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "Stackhouse: a self-hosted Pulumi backend on Lambda, DynamoDB, S3, SQS and KMS. \
             Generated from the route table by `{REGENERATE}`; do not edit."
        ),
        "Parameters": parameters(),
        "Conditions": {
            "DefaultStage": {"Fn::Equals": [r#ref("StageName"), "$default"]},
            "PointInTimeRecoveryOn": {"Fn::Equals": [r#ref("PointInTimeRecovery"), "Enabled"]},
            "AlarmEmailSet": {"Fn::Not": [{"Fn::Equals": [r#ref("AlarmEmail"), ""]}]},
        },
        "Resources": resources,
        "Outputs": outputs(),
    })
}

/// Every template with its path relative to `infra/`: the root `template.yaml` first, then
/// `stacks/<domain>.yaml` for each nested stack.
pub fn template_values() -> Vec<(String, Value)> {
    let mut out = vec![("template.yaml".to_string(), template_value())];
    out.extend(nested_stacks().into_iter().map(|s| (s.file(), s.template_value())));
    out
}

/// Every template as the YAML committed under `infra/`, by path relative to it.
pub fn templates() -> Vec<(String, String)> {
    template_values().into_iter().map(|(path, value)| (path, render(&value))).collect()
}

/// Keys written first in any mapping, in this order: CloudFormation's conventional layout.
pub(super) const KEY_ORDER: &[&str] = &[
    "Type",
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Parameters",
    "Conditions",
    "Resources",
    "Outputs",
    "Condition",
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

fn render(value: &Value) -> String {
    format!(
        "# Generated from the route table by `{REGENERATE}`. Do not edit.\n{}",
        yaml::to_string(value, KEY_ORDER)
    )
}

/// The root template as YAML: the exact content of `infra/template.yaml`.
pub fn template() -> String {
    render(&template_value())
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
