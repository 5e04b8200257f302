//! Generating the deployment from a replay state (journal.go `GenerateDeployment`): merging
//! new and base resources, features, dependencies and URN normalisation.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::service::urn::{
    format as format_urn, parse as parse_urn, DELIMITER as URN_NAME_DELIMITER,
};

use super::entry::JournalError;
use super::replay::Replayer;
use super::resource::{self, Head, Resource};
use super::{DEPLOYMENT_VERSION_CURRENT, DEPLOYMENT_VERSION_LATEST};

/// Type token of the root stack resource; children of the root keep an unqualified type.
pub(super) const ROOT_STACK_TYPE: &str = "pulumi:pulumi:Stack";
/// Separator between the parent and own type in a qualified URN type.
pub(super) const URN_TYPE_DELIMITER: char = '$';
/// The ID Pulumi substitutes when a provider reference has an empty ID.
pub(super) const UNKNOWN_PROVIDER_ID: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// Schema version, sorted features and the deployment object, as `generate` returns them.
pub(super) struct Generated {
    pub(super) version: i64,
    pub(super) features: Vec<String>,
    /// The deployment without its resources.
    pub(super) deployment: Map<String, Value>,
    /// Its resources, as text.
    pub(super) resources: Vec<Resource>,
}

impl Generated {
    /// The deployment as JSON text: the resources are copied in as they are.
    pub(super) fn encode(self) -> Result<Encoded, JournalError> {
        let text = Text { rest: &self.deployment, resources: &self.resources };
        let deployment = serde_json::value::to_raw_value(&text)
            .map_err(|e| JournalError::InvalidDeployment(format!("not encodable: {e}")))?;
        Ok(Encoded { version: self.version, features: self.features, deployment })
    }
}

/// A deployment's JSON object with its resources spliced in as text.
struct Text<'a> {
    rest: &'a Map<String, Value>,
    resources: &'a [Resource],
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.rest.len() + 1))?;
        for (key, value) in self.rest {
            map.serialize_entry(key, value)?;
        }
        if !self.resources.is_empty() {
            map.serialize_entry("resources", self.resources)?;
        }
        map.end()
    }
}

/// A generated deployment as JSON text: what `complete` stores.
#[derive(Debug)]
pub struct Encoded {
    /// The schema version: 3, or 4 when a feature is in use.
    pub version: i64,
    /// The sorted feature list (empty for version 3).
    pub features: Vec<String>,
    /// The `DeploymentV3` object.
    pub deployment: Box<RawValue>,
}

/// A deployment generated from a replay: what a checkpoint stores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The schema version: 3, or 4 when a feature is in use.
    pub version: i64,
    /// The sorted feature list (empty for version 3).
    pub features: Vec<String>,
    /// The `DeploymentV3` object.
    pub deployment: Value,
}

impl Replayer {
    /// journal.go `GenerateDeployment`. Moves the resources out of the replay state rather
    /// than copying them (copying every resource was the largest part of ending a
    /// 10,000-resource update): the state is spent afterwards, so a caller that goes on
    /// replaying generates from a clone ([`Replayer::snapshot`]).
    pub(super) fn generate(&mut self, manifest: Value) -> Result<Generated, JournalError> {
        let byte_string = self.requires_byte_string;
        let mut features = BTreeSet::new();
        let mut base = std::mem::take(&mut self.base);

        // New resources first, in production order, minus those removed later in the update.
        let removed: HashSet<usize> = self
            .to_remove
            .iter()
            .filter_map(|op| self.operation_to_index.get(op).copied())
            .collect();
        let base_resources = std::mem::take(&mut self.base_resources);
        let new_resources = std::mem::take(&mut self.new_resources);
        let mut resources = Vec::with_capacity(new_resources.len() + base_resources.len());
        for (i, res) in new_resources.into_iter().enumerate() {
            if !removed.contains(&i) {
                resources.push(res);
            }
        }

        // Then the base resources this update did not remove. A replacement state wins over
        // the delete/pendingReplacement marks (the Go code sets the marks on the copy it then
        // discards).
        for (i, mut res) in base_resources.into_iter().enumerate() {
            if self.to_delete_in_snapshot.contains(&i) {
                continue;
            }
            if let Some(state) = self.to_replace_in_snapshot.remove(&i) {
                res = state;
            } else {
                let pending = self.mark_as_pending_replacement.contains(&i);
                let deletion = self.mark_as_deletion.contains(&i);
                if pending || deletion {
                    resource::edit(&mut res, |obj| {
                        if pending {
                            set_flag(obj, "pendingReplacement");
                        }
                        if deletion {
                            set_flag(obj, "delete");
                        }
                    })?;
                }
            }
            resources.push(res);
        }
        let mut heads = read_heads(&mut resources)?;
        for head in &heads {
            apply_features(|key| head.get(key), byte_string, &mut features);
        }

        // Operations still in flight, then the base's pending creates: those need a human to
        // resolve, so they are never dropped. Other base pending operations are dropped.
        let mut operations = Vec::new();
        for op in std::mem::take(&mut self.incomplete).into_values().flatten() {
            apply_features(|key| field(op.get("resource"), key), byte_string, &mut features);
            operations.push(op);
        }
        if let Some(Value::Array(pending)) = base.remove("pending_operations") {
            for op in pending {
                if op.get("type").and_then(Value::as_str) == Some("creating") {
                    apply_features(
                        |key| field(op.get("resource"), key),
                        byte_string,
                        &mut features,
                    );
                    operations.push(op);
                }
            }
        }

        // Features are computed before this pruning, as in Go. Pruning looks at every
        // reference of every resource, so it works on trees (only updates with a refresh).
        if self.has_refresh {
            let mut trees =
                resources.iter().map(|r| resource::to_tree(r)).collect::<Result<Vec<_>, _>>()?;
            rebuild_dependencies(&mut trees);
            resources = trees.iter().map(resource::to_text).collect::<Result<_, _>>()?;
            heads = read_heads(&mut resources)?;
        }

        let secrets_providers = base.remove("secrets_providers");
        let metadata = base.remove("metadata");
        let snippets = base.remove("snippets");
        let base_extensions = base.remove("extensions");
        // Divergence: Go builds a fresh DeploymentV3 and so drops top-level keys it does not
        // know. Carrying unknown base keys forward keeps state written by newer CLIs intact.
        base.remove("manifest");
        let mut deployment = base;
        deployment.insert("manifest".into(), manifest);
        if let Some(sp) = secrets_providers.filter(|v| !v.is_null()) {
            deployment.insert("secrets_providers".into(), sp);
        }
        if !operations.is_empty() {
            deployment.insert("pending_operations".into(), Value::Array(operations));
        }
        // Go's metadata is a struct, so it is always present (`{}` when empty).
        let metadata = metadata.filter(|v| !v.is_null());
        deployment.insert("metadata".into(), metadata.unwrap_or_else(|| Value::Object(Map::new())));
        if let Some(Value::Array(snippets)) = snippets {
            if !snippets.is_empty() {
                features.insert("snippets-prototype");
                deployment.insert("snippets".into(), Value::Array(snippets));
            }
        }
        // The base's extensions win over ones recorded in this update (Go copies the base's
        // map over the recorded one).
        let mut extensions = std::mem::take(&mut self.extensions);
        if let Some(Value::Object(base_extensions)) = base_extensions {
            extensions.extend(base_extensions);
        }
        if !extensions.is_empty() {
            deployment.insert("extensions".into(), Value::Object(extensions));
        }

        normalize_urn_references(&mut deployment, &mut resources, &heads)?;

        let version = if features.is_empty() {
            DEPLOYMENT_VERSION_CURRENT
        } else {
            DEPLOYMENT_VERSION_LATEST
        };
        Ok(Generated {
            version,
            features: features.into_iter().map(String::from).collect(),
            deployment,
            resources,
        })
    }
}

/// Checks that `v` is a `DeploymentV3`-shaped object, as far as replay relies on it.
pub(super) fn validate_deployment(
    v: Value,
    what: &str,
) -> Result<Map<String, Value>, JournalError> {
    let Value::Object(map) = v else {
        return Err(JournalError::InvalidDeployment(format!("{what} is not an object")));
    };
    match map.get("resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(resources)) => {
            if !resources.iter().all(Value::is_object) {
                return Err(JournalError::InvalidDeployment(format!(
                    "{what}: every resource must be an object"
                )));
            }
        }
        Some(_) => {
            return Err(JournalError::InvalidDeployment(format!("{what}: resources is not a list")))
        }
    }
    match map.get("pending_operations") {
        None | Some(Value::Null) | Some(Value::Array(_)) => Ok(map),
        Some(_) => Err(JournalError::InvalidDeployment(format!(
            "{what}: pending_operations is not a list"
        ))),
    }
}

/// The heads of `resources`, in order.
fn read_heads(resources: &mut [Resource]) -> Result<Vec<Head>, JournalError> {
    resources.iter_mut().map(Head::read).collect()
}

/// A field of a resource tree (`None` when it is no object or lacks the field).
fn field(resource: Option<&Value>, key: &str) -> Option<Value> {
    resource.and_then(Value::as_object).and_then(|obj| obj.get(key)).cloned()
}

/// Sets a boolean marker (`delete`, `pendingReplacement`) on a resource object.
pub(super) fn set_flag(resource: &mut Map<String, Value>, key: &str) {
    resource.insert(key.to_string(), Value::Bool(true));
}

pub(super) fn non_empty_str(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

/// pkg/resource/stack `ApplyFeatures`: which v4 features a resource needs. `byteString`
/// cannot be seen in the (encrypted) resource, so it comes from the entries' flag, and, as
/// in Go, is only recorded when there is at least one resource or operation to look at.
///
/// `field` reads one field of the resource: from its head for a resource kept as text, from
/// the tree for a pending operation's resource.
pub(super) fn apply_features(
    field: impl Fn(&str) -> Option<Value>,
    byte_string: bool,
    features: &mut BTreeSet<&'static str>,
) {
    if byte_string {
        features.insert("byteString");
    }
    if field("refreshBeforeUpdate") == Some(Value::Bool(true)) {
        features.insert("refreshBeforeUpdate");
    }
    if non_empty_str(field("viewOf").as_ref()) {
        features.insert("views");
    }
    if field("resourceHooks").as_ref().and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
        features.insert("hooks");
    }
    if field("taint") == Some(Value::Bool(true)) {
        features.insert("taint");
    }
    if field("replaceWith").as_ref().and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        features.insert("replaceWith");
    }
    if non_empty_str(field("extensionRef").as_ref()) {
        features.insert("extensionParameterization");
    }
    if non_empty_str(field("snippetID").as_ref()) {
        features.insert("snippets-prototype");
    }
}

/// Keeps the elements of a URN list that are in `referenceable`; non-strings cannot be.
pub(super) fn filter_urns(list: &[Value], referenceable: &HashSet<String>) -> Vec<Value> {
    list.iter().filter(|u| u.as_str().is_some_and(|u| referenceable.contains(u))).cloned().collect()
}

/// Replaces (or, when it became empty, removes) a field: Go's `omitempty` drops empty lists,
/// maps and strings on output.
pub(super) fn set_or_remove(obj: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Null => true,
        _ => false,
    };
    if empty {
        obj.remove(key);
    } else {
        obj.insert(key.to_string(), value);
    }
}

/// journal.go `rebuildDependencies` + `undangleParentResources`: after a refresh removed
/// resources, drop references to URNs that do not precede the referring resource, then fix
/// parents that point at no resource at all.
pub(super) fn rebuild_dependencies(resources: &mut [Value]) {
    let mut referenceable: HashSet<String> = HashSet::with_capacity(resources.len());
    for res in resources.iter_mut() {
        let Some(obj) = res.as_object_mut() else { continue };
        if let Some(Value::Array(deps)) = obj.get("dependencies") {
            if !deps.is_empty() {
                let kept = filter_urns(deps, &referenceable);
                set_or_remove(obj, "dependencies", Value::Array(kept));
            }
        }
        if let Some(Value::Object(prop_deps)) = obj.get("propertyDependencies") {
            if !prop_deps.is_empty() {
                // Keys whose list ends up empty disappear, as in Go, which only creates a key
                // when it appends a surviving URN.
                let mut kept = Map::new();
                for (key, deps) in prop_deps {
                    let list = deps.as_array().map(|d| filter_urns(d, &referenceable));
                    if let Some(list) = list.filter(|l| !l.is_empty()) {
                        kept.insert(key.clone(), Value::Array(list));
                    }
                }
                set_or_remove(obj, "propertyDependencies", Value::Object(kept));
            }
        }
        if let Some(Value::Array(replace_with)) = obj.get("replaceWith") {
            if !replace_with.is_empty() {
                let kept = filter_urns(replace_with, &referenceable);
                set_or_remove(obj, "replaceWith", Value::Array(kept));
            }
        }
        let deleted_with_ok = obj
            .get("deletedWith")
            .and_then(Value::as_str)
            .is_some_and(|u| referenceable.contains(u));
        if !deleted_with_ok {
            obj.remove("deletedWith");
        }
        if let Some(urn) = obj.get("urn").and_then(Value::as_str) {
            referenceable.insert(urn.to_string());
        }
    }

    // undangleParentResources. Go looks the missing parent up in a map of the parents of
    // resources in the list; since the parent is not in the list it is never found there, so
    // in effect a dangling parent is cleared (the resource moves to the root), not replaced
    // by its grandparent as the comment in journal.go suggests. Mirrored literally.
    let undeleted = referenceable;
    let mut available_parents: HashMap<String, String> = HashMap::new();
    for res in resources.iter_mut() {
        let Some(obj) = res.as_object_mut() else { continue };
        let parent = obj.get("parent").and_then(Value::as_str).unwrap_or("").to_string();
        if !undeleted.contains(&parent) {
            let replacement = available_parents.get(&parent).cloned().unwrap_or_default();
            set_or_remove(obj, "parent", Value::String(replacement));
        }
        if let Some(urn) = obj.get("urn").and_then(Value::as_str) {
            // Go records the parent as it was before the fix-up above.
            available_parents.insert(urn.to_string(), parent);
        }
    }
}

/// The resource's own type: the last `$`-separated element of the qualified type.
pub(super) fn own_type(qualified_type: &str) -> &str {
    qualified_type.rsplit(URN_TYPE_DELIMITER).next().unwrap_or(qualified_type)
}

/// Go `urn.New`: children of the root stack keep an unqualified type.
pub(super) fn new_urn(
    stack: &str,
    project: &str,
    parent_type: &str,
    base_type: &str,
    name: &str,
) -> String {
    let typ = if !parent_type.is_empty() && parent_type != ROOT_STACK_TYPE {
        format!("{parent_type}{URN_TYPE_DELIMITER}{base_type}")
    } else {
        base_type.to_string()
    };
    format_urn(stack, project, &typ, name)
}

/// Go `providers.validateURN`: a valid URN whose own type is `pulumi:providers:<name>`.
pub(super) fn is_provider_urn(urn: &str) -> bool {
    let Some(parts) = parse_urn(urn) else { return false };
    let typ = own_type(parts.qualified_type);
    typ.strip_prefix("pulumi:providers:").is_some_and(|name| !name.is_empty())
}

/// apitype `DeploymentV3.NormalizeURNReferences`: rewrite every URN reference that names an
/// alias to the aliased resource's current URN (one level, as in Go), re-derive the URNs of
/// children whose parent changed URN, and drop `aliases` from the output. `heads` are the
/// resources' heads, in order. Without aliases (nearly every update) only a resource that
/// carries an `aliases` field changes, and every other one stays the text it is.
pub(super) fn normalize_urn_references(
    deployment: &mut Map<String, Value>,
    resources: &mut [Resource],
    heads: &[Head],
) -> Result<(), JournalError> {
    let mut aliased: HashMap<String, String> = HashMap::new();
    for head in heads {
        let urn = head.text("urn").unwrap_or_default();
        if let Some(Value::Array(aliases)) = head.get("aliases") {
            for alias in aliases.iter().filter_map(Value::as_str) {
                if let Some(other) = aliased.get(alias) {
                    if *other != urn {
                        return Err(JournalError::DuplicateAlias {
                            alias: alias.to_string(),
                            first: other.clone(),
                            second: urn,
                        });
                    }
                }
                aliased.insert(alias.to_string(), urn.clone());
            }
        }
        // If the parent changed URN, this resource's URN changes too.
        let parent = head.text("parent").unwrap_or_default();
        let Some(new_parent) = aliased.get(&parent) else { continue };
        let (Some(parent_parts), Some(own)) = (parse_urn(new_parent), parse_urn(&urn)) else {
            // Go would panic on a malformed URN here; leave the reference alone instead.
            continue;
        };
        if parent_parts.qualified_type != ROOT_STACK_TYPE {
            let renamed = new_urn(
                own.stack,
                own.project,
                parent_parts.qualified_type,
                own_type(own.qualified_type),
                own.name,
            );
            aliased.insert(urn.clone(), renamed);
        }
    }

    let fix = |v: &mut Value| {
        if let Some(new) = v.as_str().and_then(|u| aliased.get(u)) {
            *v = Value::String(new.clone());
        }
    };
    for (res, head) in resources.iter_mut().zip(heads) {
        // A provider reference with an empty ID is rewritten even without aliases.
        // (Only an empty ID can change without aliases: skip the URN parse for the rest.)
        let provider_changes = || {
            head.text("provider").is_some_and(|p| {
                p.ends_with(URN_NAME_DELIMITER)
                    && fix_provider(&p, &aliased).is_some_and(|fixed| fixed != p)
            })
        };
        if aliased.is_empty() && !head.has_aliases() && !provider_changes() {
            continue;
        }
        resource::edit(res, |obj| {
            for key in ["urn", "parent", "deletedWith", "viewOf"] {
                if let Some(v) = obj.get_mut(key) {
                    fix(v);
                }
            }
            if let Some(Value::String(provider)) = obj.get_mut("provider") {
                if let Some(fixed) = fix_provider(provider, &aliased) {
                    *provider = fixed;
                }
            }
            if let Some(Value::Array(deps)) = obj.get_mut("dependencies") {
                deps.iter_mut().for_each(fix);
            }
            if let Some(Value::Object(prop_deps)) = obj.get_mut("propertyDependencies") {
                for deps in prop_deps.values_mut() {
                    if let Value::Array(deps) = deps {
                        deps.iter_mut().for_each(fix);
                    }
                }
            }
            // Once references are normalised, aliases are not written out.
            obj.remove("aliases");
        })?;
    }
    if let Some(Value::Array(snippets)) = deployment.get_mut("snippets") {
        for snippet in snippets.iter_mut() {
            if let Some(Value::Object(references)) = snippet.get_mut("references") {
                references.values_mut().for_each(fix);
            }
        }
    }
    Ok(())
}

/// Rewrites the URN half of a provider reference `<urn>::<id>`. Returns `None` to leave the
/// reference untouched when it does not parse (Go would panic). As in Go, an empty ID comes
/// back as the unknown-ID placeholder.
pub(super) fn fix_provider(provider: &str, aliased: &HashMap<String, String>) -> Option<String> {
    if provider.is_empty() {
        return None;
    }
    let split = provider.rfind(URN_NAME_DELIMITER)?;
    let (urn, id) = (&provider[..split], &provider[split + URN_NAME_DELIMITER.len()..]);
    if !is_provider_urn(urn) {
        return None;
    }
    let urn = aliased.get(urn).map(String::as_str).unwrap_or(urn);
    if !is_provider_urn(urn) {
        return None;
    }
    let id = if id.is_empty() { UNKNOWN_PROVIDER_ID } else { id };
    Some(format!("{urn}{URN_NAME_DELIMITER}{id}"))
}
