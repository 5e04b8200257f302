//! The whole template as a value and as the committed YAML, and the drift check.

use serde_json::{json, Map, Value};

use crate::yaml;

use super::functions::functions;
use super::resources::{data_resources, function_resources, outputs, parameters, r#ref};

/// The command that regenerates `infra/template.yaml`.
pub const REGENERATE: &str = "cargo run -p stackhouse-infra";

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
            "PointInTimeRecoveryOn": {"Fn::Equals": [r#ref("PointInTimeRecovery"), "Enabled"]},
        },
        "Resources": resources,
        "Outputs": outputs(),
    })
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
