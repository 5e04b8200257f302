//! StackReferences between stacks, derived from deployments: a stack's upstream stacks are those
//! its current deployment's `pulumi:pulumi:StackReference` resources name; its downstream
//! stacks are those whose deployment names it, as the organization's search index recorded them
//! at its last run (reading every deployment of the organization per request would not scale).

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::resources;
use crate::app::App;
use crate::error::Result;
use crate::names::{OrgName, ProjectName, StackName, StackRef};

/// The resource type of a stack reference.
pub const STACK_REFERENCE: &str = "pulumi:pulumi:StackReference";

/// A referenced stack by its full name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Referenced {
    /// Organization.
    pub org: String,
    /// Project.
    pub project: String,
    /// Stack.
    pub stack: String,
}

impl fmt::Display for Referenced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.org, self.project, self.stack)
    }
}

impl Referenced {
    /// A reference's `name` as a program wrote it, completed as the CLI completes it against
    /// the service: `stack` is in the referring stack's organization and project, `org/stack`
    /// in its project. None for anything else (empty parts, more than three).
    pub fn parse(name: &str, org: &str, project: &str) -> Option<Referenced> {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let (o, p, s) = match parts.as_slice() {
            [s] => (org, project, *s),
            [o, s] => (*o, project, *s),
            [o, p, s] => (*o, *p, *s),
            _ => return None,
        };
        Some(Referenced { org: o.into(), project: p.into(), stack: s.into() })
    }

    /// The stack it names, when each part is a valid name.
    pub fn stack_ref(&self) -> Option<StackRef> {
        Some(StackRef {
            org: OrgName::parse(&self.org).ok()?,
            project: ProjectName::parse(&self.project).ok()?,
            stack: StackName::parse(&self.stack).ok()?,
        })
    }
}

/// The stacks the deployment's stack references name, each once, in name order. A name that is
/// a secret (ciphertext) or not a stack name is left out: it cannot be resolved without
/// decrypting.
pub fn upstream(untyped: &Value, org: &str, project: &str) -> Result<Vec<Referenced>> {
    let mut out = BTreeSet::new();
    for resource in resources::list(untyped)? {
        if resource.type_ != STACK_REFERENCE || resource.delete {
            continue;
        }
        let name = [resource.inputs, resource.outputs]
            .iter()
            .find_map(|props| props.get("name").and_then(Value::as_str));
        if let Some(found) = name.and_then(|n| Referenced::parse(n, org, project)) {
            out.insert(found);
        }
    }
    Ok(out.into_iter().collect())
}

/// The ids of the stacks of `target`'s organization whose deployment references it, as of the
/// organization's last indexing run.
pub async fn downstream(app: &App, target: &Referenced) -> Result<BTreeSet<String>> {
    let (_, manifest) = super::search::store::load(app, &target.org).await?;
    let name = target.to_string();
    Ok(manifest
        .references
        .into_iter()
        .filter(|(_, names)| names.contains(&name))
        .map(|(id, _)| id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(resources: Value) -> Value {
        json!({"version": 3, "deployment": {"manifest": {}, "resources": resources}})
    }

    #[test]
    fn names_are_completed_like_the_cli_does() {
        let r = |n| Referenced::parse(n, "acme", "web").map(|r| r.to_string());
        assert_eq!(r("prod").as_deref(), Some("acme/web/prod"));
        assert_eq!(r("other/prod").as_deref(), Some("other/web/prod"));
        assert_eq!(r("other/net/prod").as_deref(), Some("other/net/prod"));
        for bad in ["", "a//b", "a/b/c/d", "/x"] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn upstream_reads_stack_reference_names_once() {
        let urn = |n: &str| format!("urn:pulumi:dev::web::{STACK_REFERENCE}::{n}");
        let d = deployment(json!([
            {"urn": urn("a"), "type": STACK_REFERENCE, "custom": true,
             "inputs": {"name": "acme/net/prod"}, "outputs": {"name": "acme/net/prod"}},
            {"urn": urn("b"), "type": STACK_REFERENCE, "custom": true,
             "inputs": {}, "outputs": {"name": "staging"}},
            {"urn": urn("c"), "type": STACK_REFERENCE, "custom": true,
             "inputs": {"name": "acme/net/prod"}},
            {"urn": urn("d"), "type": STACK_REFERENCE, "custom": true,
             "inputs": {"name": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                                  "ciphertext": "xyz"}}},
            {"urn": urn("e"), "type": STACK_REFERENCE, "custom": true, "delete": true,
             "inputs": {"name": "acme/old/prod"}},
            {"urn": "urn:pulumi:dev::web::aws:s3/bucket:Bucket::b", "type": "aws:s3/bucket:Bucket",
             "custom": true, "inputs": {"name": "acme/x/y"}},
        ]));
        let found: Vec<String> =
            upstream(&d, "acme", "web").unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(found, ["acme/net/prod", "acme/web/staging"]);
    }
}
