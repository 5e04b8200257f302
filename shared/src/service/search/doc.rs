//! What the search index holds of one resource: the fields a query can name, derived from a
//! stack's stored deployment, and the diff between two deployments that an indexing run
//! applies (only resources that were added, changed or removed).

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::query::normal_time;
use crate::error::Result;
use crate::service::resources::{self, Resource};

/// The stack a document belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOf {
    /// The stack's immutable id (access checks and renames go by it).
    pub id: String,
    /// Project name.
    pub project: String,
    /// Stack name.
    pub stack: String,
}

/// One resource as indexed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceDoc {
    /// Its stack.
    pub stack_id: String,
    /// Project name.
    pub project: String,
    /// Stack name.
    pub stack: String,
    /// The URN.
    pub urn: String,
    /// The type token, `package:module/member:Type` (`aws:s3/bucket:Bucket`).
    pub type_: String,
    /// The type's package (`aws`).
    pub package: String,
    /// The type's module (`s3`: the part before the `/`, as Pulumi Cloud shows it).
    pub module: String,
    /// The logical name (the URN's last part).
    pub name: String,
    /// The provider's id of the resource, empty for components.
    pub id: String,
    /// Managed by a provider.
    pub custom: bool,
    /// Pending deletion.
    pub delete: bool,
    /// Protected.
    pub protected: bool,
    /// Read, not managed.
    pub external: bool,
    /// Pending replacement.
    pub pending_replacement: bool,
    /// The operation pending on it when an update was interrupted (`creating`, `updating`,
    /// `deleting`, `reading`, `importing`), else empty.
    pub pending: String,
    /// The parent's URN.
    pub parent_urn: String,
    /// The provider resource's URN.
    pub provider_urn: String,
    /// URNs it depends on.
    pub dependencies: Vec<String>,
    /// When the CLI created it, normalised ([`normal_time`]); empty if it did not say.
    pub created: String,
    /// When it last changed, normalised: the CLI's `modified`, else `created`, else the end
    /// of the update that first stored this content.
    pub modified: String,
    /// A hash of the stored resource: equal fingerprints, no reindexing.
    pub fingerprint: String,
}

impl ResourceDoc {
    /// The document's key, unique within an organization.
    pub fn key(&self) -> String {
        key(&self.stack_id, &self.urn)
    }
}

/// The key of the resource `urn` of stack `stack_id`.
pub fn key(stack_id: &str, urn: &str) -> String {
    format!("{stack_id} {urn}")
}

/// `package`, `module` of a type token: `aws:s3/bucket:Bucket` → (`aws`, `s3`),
/// `pulumi:providers:aws` → (`pulumi`, `providers`), `my:index:Thing` → (`my`, `index`).
pub fn type_parts(type_: &str) -> (&str, &str) {
    let mut parts = type_.splitn(3, ':');
    let package = parts.next().unwrap_or_default();
    let module = parts.next().unwrap_or_default();
    let module = module.split_once('/').map_or(module, |(m, _)| m);
    (package, module)
}

/// The documents of a deployment's resources. `now` (normalised, [`normal_time`]) stands in
/// for a resource's change time when the CLI recorded none.
pub fn docs_of(stack: &StackOf, untyped: &Value, now: &str) -> Result<Vec<ResourceDoc>> {
    let deployment = untyped.get("deployment");
    let list = |name: &str| {
        deployment
            .and_then(|d| d.get(name))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let raw = list("resources");
    let pending: HashMap<&str, &str> = list("pending_operations")
        .iter()
        .filter_map(|op| {
            let urn = op.get("resource")?.get("urn")?.as_str()?;
            Some((urn, op.get("type")?.as_str()?))
        })
        .collect();
    let views = resources::list(untyped)?;
    // `list` skips entries without a URN; pair each view with its stored JSON by URN.
    let by_urn: HashMap<&str, &Value> =
        raw.iter().filter_map(|r| Some((r.get("urn")?.as_str()?, r))).collect();
    Ok(views
        .iter()
        .map(|view| {
            let mut doc = doc_of(stack, view, by_urn.get(view.urn).copied(), now);
            doc.pending = pending.get(view.urn).copied().unwrap_or_default().to_string();
            doc
        })
        .collect())
}

fn doc_of(stack: &StackOf, r: &Resource<'_>, stored: Option<&Value>, now: &str) -> ResourceDoc {
    let text = |name: &str| {
        stored.and_then(|s| s.get(name)).and_then(Value::as_str).unwrap_or_default().to_string()
    };
    let created = normal_time(&text("created")).unwrap_or_default();
    let modified = normal_time(&text("modified"))
        .or_else(|| Some(created.clone()).filter(|c| !c.is_empty()))
        .unwrap_or_else(|| now.to_string());
    let fingerprint = stored
        .map(|s| hex::encode(&Sha256::digest(s.to_string().as_bytes())[..16]))
        .unwrap_or_default();
    let (package, module) = type_parts(r.type_);
    let name = super::super::urn::parse(r.urn).map(|p| p.name).unwrap_or_default();
    let provider_urn = text("provider")
        .rsplit_once(super::super::urn::DELIMITER)
        .map(|(urn, _)| urn.to_string())
        .unwrap_or_default();
    ResourceDoc {
        stack_id: stack.id.clone(),
        project: stack.project.clone(),
        stack: stack.stack.clone(),
        urn: r.urn.to_string(),
        type_: r.type_.to_string(),
        package: package.to_string(),
        module: module.to_string(),
        name: name.to_string(),
        id: r.id.unwrap_or_default().to_string(),
        custom: r.custom,
        delete: r.delete,
        protected: r.protect,
        external: r.external,
        pending_replacement: stored
            .and_then(|s| s.get("pendingReplacement"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        pending: String::new(),
        parent_urn: r.parent.unwrap_or_default().to_string(),
        provider_urn,
        dependencies: r.dependencies.iter().map(|d| d.to_string()).collect(),
        created,
        modified,
        fingerprint,
    }
}

/// What an indexing run changes: keys to remove and documents to (re)write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Keys of documents that are gone or replaced.
    pub remove: Vec<String>,
    /// Documents to write (new or changed).
    pub upsert: Vec<ResourceDoc>,
}

impl Changes {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.upsert.is_empty()
    }
}

/// The changes that turn the documents `old` of a stack into `new`: a resource whose stored
/// JSON and stack names are unchanged is left alone; a changed one keeps its former `modified`
/// only if the CLI said when it changed.
pub fn diff(old: &[ResourceDoc], new: Vec<ResourceDoc>) -> Changes {
    let before: HashMap<String, &ResourceDoc> = old.iter().map(|d| (d.key(), d)).collect();
    let mut changes = Changes::default();
    let mut kept = std::collections::HashSet::new();
    for doc in new {
        let k = doc.key();
        match before.get(&k) {
            Some(prev) if prev.fingerprint == doc.fingerprint && same_place(prev, &doc) => {}
            Some(_) => {
                changes.remove.push(k.clone());
                changes.upsert.push(doc);
            }
            None => changes.upsert.push(doc),
        }
        kept.insert(k);
    }
    changes.remove.extend(before.into_keys().filter(|k| !kept.contains(k)));
    changes.remove.sort();
    changes.remove.dedup();
    changes
}

fn same_place(a: &ResourceDoc, b: &ResourceDoc) -> bool {
    a.project == b.project && a.stack == b.stack
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stack() -> StackOf {
        StackOf { id: "s1".into(), project: "proj".into(), stack: "dev".into() }
    }

    fn deployment(resources: Value) -> Value {
        json!({"version": 3, "deployment": {"manifest": {}, "resources": resources}})
    }

    #[test]
    fn a_resource_document_names_its_type_parts_stack_and_times() {
        let d = deployment(json!([
            {"urn": "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::logs::v2", "type": "aws:s3/bucket:Bucket",
             "custom": true, "id": "logs-1", "protect": true,
             "provider": "urn:pulumi:dev::proj::pulumi:providers:aws::default::p1",
             "created": "2026-11-01T10:00:00Z", "modified": "2026-11-02T10:00:00Z"},
            {"urn": "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev", "type": "pulumi:pulumi:Stack"}
        ]));
        let docs = docs_of(&stack(), &d, "2026-12-01T00:00:00.000Z").unwrap();
        let b = &docs[0];
        assert_eq!((b.package.as_str(), b.module.as_str()), ("aws", "s3"));
        assert_eq!(b.name, "logs::v2");
        assert_eq!(b.provider_urn, "urn:pulumi:dev::proj::pulumi:providers:aws::default");
        assert!(b.protected && b.custom && !b.delete);
        assert_eq!(b.modified, "2026-11-02T10:00:00.000Z");
        assert_eq!(docs[1].modified, "2026-12-01T00:00:00.000Z");
        assert_eq!((docs[1].package.as_str(), docs[1].module.as_str()), ("pulumi", "pulumi"));
        assert_eq!(b.key(), "s1 urn:pulumi:dev::proj::aws:s3/bucket:Bucket::logs::v2");
    }

    #[test]
    fn the_diff_touches_only_what_changed() {
        let r = |name: &str, acl: &str| {
            json!({"urn": format!("urn:pulumi:dev::proj::aws:s3/bucket:Bucket::{name}"),
                   "type": "aws:s3/bucket:Bucket", "custom": true, "inputs": {"acl": acl}})
        };
        let now = "2026-12-01T00:00:00Z";
        let old =
            docs_of(&stack(), &deployment(json!([r("a", "x"), r("b", "x"), r("c", "x")])), now)
                .unwrap();
        let new =
            docs_of(&stack(), &deployment(json!([r("a", "x"), r("b", "y"), r("d", "x")])), now)
                .unwrap();
        let changes = diff(&old, new);
        let names: Vec<&str> = changes.upsert.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(
            changes.remove,
            [
                key("s1", "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::b"),
                key("s1", "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::c")
            ]
        );
        assert!(diff(&old, old.clone()).is_empty());
    }
}
