//! Resources kept as their JSON text through replay and generation.
//!
//! Ending a 10,000-resource update used to spend most of its time turning every resource into
//! a JSON tree and back: parsing the stored replay state, generating the deployment, encoding
//! it. Generation only looks at a handful of fields of each resource (its URN, parent, aliases
//! and the fields that select schema features) and changes a resource only in rare cases
//! (deletion marks, refresh pruning, aliases), so resources stay text: a [`Head`] borrows the
//! few fields from the text, and only a resource that must change becomes a tree, briefly.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::entry::JournalError;

/// One resource (`ResourceV3`) as JSON text, always an object.
pub(super) type Resource = Box<RawValue>;

/// The text of a resource tree.
pub(super) fn to_text(tree: &Value) -> Result<Resource, JournalError> {
    serde_json::value::to_raw_value(tree)
        .map_err(|e| JournalError::InvalidDeployment(format!("resource not encodable: {e}")))
}

/// The tree of a resource's text.
pub(super) fn to_tree(text: &RawValue) -> Result<Value, JournalError> {
    serde_json::from_str(text.get())
        .map_err(|e| JournalError::InvalidDeployment(format!("resource not decodable: {e}")))
}

/// Changes a resource through its tree and stores the result as text again.
pub(super) fn edit(
    text: &mut Resource,
    change: impl FnOnce(&mut Map<String, Value>),
) -> Result<(), JournalError> {
    let mut tree = to_tree(text)?;
    if let Some(obj) = tree.as_object_mut() {
        change(obj);
    }
    *text = to_text(&tree)?;
    Ok(())
}

/// The fields of a resource that generation reads, copied out of its text (a few short ones,
/// so copying costs less than juggling a borrow of text that may be rewritten). Every field is
/// kept as raw JSON so that no value of an unexpected type makes reading fail; [`Head::get`] turns
/// one into a tree when a rule looks at it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Head {
    #[serde(default, deserialize_with = "present")]
    urn: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    parent: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    provider: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    aliases: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    refresh_before_update: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    view_of: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    resource_hooks: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    taint: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    replace_with: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    extension_ref: Option<Box<RawValue>>,
    #[serde(rename = "snippetID", default, deserialize_with = "present")]
    snippet_id: Option<Box<RawValue>>,
}

/// A field that is there, `null` included (plain `Option` would read `null` as absent, and
/// `"aliases": null` must still be dropped from the output).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl Head {
    /// Reads the head of `text`. A resource that names a field twice (valid JSON, refused by
    /// a struct reader) is first rewritten the way a tree reads it, last value winning.
    pub(super) fn read(text: &mut Resource) -> Result<Head, JournalError> {
        if let Ok(head) = serde_json::from_str::<Head>(text.get()) {
            return Ok(head);
        }
        *text = to_text(&to_tree(text)?)?;
        serde_json::from_str(text.get())
            .map_err(|e| JournalError::InvalidDeployment(format!("resource not decodable: {e}")))
    }

    /// The field `key` as a tree (`None` when absent or not one generation reads).
    pub(super) fn get(&self, key: &str) -> Option<Value> {
        let raw = match key {
            "urn" => &self.urn,
            "parent" => &self.parent,
            "provider" => &self.provider,
            "aliases" => &self.aliases,
            "refreshBeforeUpdate" => &self.refresh_before_update,
            "viewOf" => &self.view_of,
            "resourceHooks" => &self.resource_hooks,
            "taint" => &self.taint,
            "replaceWith" => &self.replace_with,
            "extensionRef" => &self.extension_ref,
            "snippetID" => &self.snippet_id,
            _ => &None,
        };
        serde_json::from_str(raw.as_ref()?.get()).ok()
    }

    /// A string field (`None` when absent or not a string).
    pub(super) fn text(&self, key: &str) -> Option<String> {
        match self.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether the resource has an `aliases` field at all (it is never written out).
    pub(super) fn has_aliases(&self) -> bool {
        self.aliases.is_some()
    }
}

/// Splits a validated deployment into its resources (as text) and everything else.
pub(super) fn take_resources(
    deployment: &mut Map<String, Value>,
) -> Result<Vec<Resource>, JournalError> {
    match deployment.remove("resources") {
        Some(Value::Array(resources)) => resources.iter().map(to_text).collect(),
        _ => Ok(Vec::new()),
    }
}

/// A deployment given as JSON text, split into its resources (kept as text) and everything
/// else (a tree), checked as [`super::snapshot::validate_deployment`] checks a tree.
pub(super) fn split_text(text: &str) -> Result<(Map<String, Value>, Vec<Resource>), JournalError> {
    #[derive(Deserialize)]
    struct Split {
        #[serde(default)]
        resources: Option<Vec<Resource>>,
        #[serde(flatten)]
        rest: Map<String, Value>,
    }
    let bad = |what: String| JournalError::InvalidDeployment(format!("base deployment: {what}"));
    if text.trim() == "null" {
        return Ok((Map::new(), Vec::new()));
    }
    let split: Split = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let resources = split.resources.unwrap_or_default();
    if !resources.iter().all(|r| r.get().trim_start().starts_with('{')) {
        return Err(bad("every resource must be an object".into()));
    }
    let rest = super::snapshot::validate_deployment(Value::Object(split.rest), "base deployment")?;
    Ok((rest, resources))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_head_reads_the_fields_generation_needs_and_tolerates_odd_types() {
        let mut text = to_text(&json!({"urn": "u", "taint": "yes", "aliases": [1, "a"],
            "outputs": {"deep": [1, 2, {"x": null}]}}))
        .unwrap();
        let head = Head::read(&mut text).unwrap();
        assert_eq!(head.text("urn").as_deref(), Some("u"));
        assert_eq!(head.get("taint"), Some(json!("yes")));
        assert_eq!(head.get("aliases"), Some(json!([1, "a"])));
        assert!(head.has_aliases());
        assert_eq!(head.get("parent"), None);
        let head = Head::read(&mut to_text(&json!({"aliases": null})).unwrap()).unwrap();
        assert!(head.has_aliases());
    }

    #[test]
    fn a_resource_naming_a_field_twice_reads_as_a_tree_does() {
        let mut text: Resource =
            serde_json::from_str(r#"{"urn": "first", "type": "t", "urn": "second"}"#).unwrap();
        let head = Head::read(&mut text).unwrap();
        assert_eq!(head.text("urn").as_deref(), Some("second"));
    }

    #[test]
    fn a_deployment_text_splits_as_its_tree_does() {
        let tree = json!({"manifest": {"time": "t"}, "resources": [{"urn": "a"}, {"urn": "b"}],
            "pending_operations": []});
        let (rest, resources) = split_text(&tree.to_string()).unwrap();
        let mut expected = tree.as_object().unwrap().clone();
        let expected_resources = take_resources(&mut expected).unwrap();
        assert_eq!(rest, expected);
        let texts = |r: &[Resource]| r.iter().map(|r| r.get().to_string()).collect::<Vec<_>>();
        assert_eq!(texts(&resources), texts(&expected_resources));
        assert_eq!(split_text("null").unwrap().1.len(), 0);
        for bad in [
            "[1]",
            r#"{"resources": {}}"#,
            r#"{"resources": [1]}"#,
            r#"{"pending_operations": 3}"#,
            "{",
        ] {
            assert!(split_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_edit_changes_the_text() {
        let mut text = to_text(&json!({"urn": "u"})).unwrap();
        edit(&mut text, |obj| {
            obj.insert("delete".into(), Value::Bool(true));
        })
        .unwrap();
        assert_eq!(to_tree(&text).unwrap(), json!({"urn": "u", "delete": true}));
    }
}
