//! A deployment's resources in Pulumi Cloud's shapes (`GET …/resources/…`, the REST API's
//! `Resource`): views borrowed from the stored deployment of one stack version, never copies of
//! its property trees. Secret values stay as stored, i.e. ciphertext: these routes only need
//! read permission on the stack, and decryption is a separate, audited call.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One resource of a deployment (the REST API's `Resource`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Resource<'a> {
    /// The provider's id of the resource (absent for component resources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// The resource type token (`aws:s3/bucket:Bucket`).
    #[serde(rename = "type")]
    pub type_: &'a str,
    /// The resource's URN.
    pub urn: &'a str,
    /// Whether a provider manages it (false for components).
    pub custom: bool,
    /// Whether it is pending deletion (replaced, not yet deleted).
    pub delete: bool,
    /// The URNs it depends on.
    pub dependencies: Vec<&'a str>,
    /// Its parent's URN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<&'a str>,
    /// Protected from deletion.
    pub protect: bool,
    /// Read from the cloud, not managed by this stack.
    pub external: bool,
    /// Left in the cloud when deleted from the stack.
    pub retain_on_delete: bool,
    /// Output names the program marked secret.
    pub additional_secret_outputs: Vec<&'a str>,
    /// Former URNs of the resource.
    pub aliases: Vec<&'a str>,
    /// The URN whose deletion deletes this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_with: Option<&'a str>,
    /// Errors of a failed creation.
    pub init_errors: Vec<&'a str>,
    /// Input properties, as stored (secrets as ciphertext).
    #[cfg_attr(feature = "openapi", schemars(with = "serde_json::Map<String, Value>"))]
    pub inputs: &'a Value,
    /// Output properties, as stored (secrets as ciphertext).
    #[cfg_attr(feature = "openapi", schemars(with = "serde_json::Map<String, Value>"))]
    pub outputs: &'a Value,
    /// The inputs of the provider resource that manages it (from its `provider` reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schemars(with = "Option<serde_json::Map<String, Value>>"))]
    pub provider_inputs: Option<&'a Value>,
}

/// What a resource without inputs or outputs shows: `{}`, as Pulumi Cloud does.
static EMPTY_OBJECT: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(serde_json::Map::new()));

/// The resources of an `UntypedDeployment` (`{"version","deployment":{"resources":[…]}}`), in
/// deployment order. A deployment without resources (a new stack) has none.
pub fn list(untyped: &Value) -> Result<Vec<Resource<'_>>> {
    let raw = raw_resources(untyped)?;
    // Provider references are `<urn>::<id>`; the provider resources are in the same list.
    let providers: std::collections::HashMap<(&str, &str), &Value> = raw
        .iter()
        .filter(|r| str_field(r, "type").is_some_and(|t| t.starts_with("pulumi:providers:")))
        .filter_map(|r| Some(((str_field(r, "urn")?, str_field(r, "id")?), r.get("inputs")?)))
        .collect();
    Ok(raw.iter().filter_map(|r| view(r, &providers)).collect())
}

/// The resource with this URN, if the deployment has it.
pub fn find<'a>(untyped: &'a Value, urn: &str) -> Result<Option<Resource<'a>>> {
    Ok(list(untyped)?.into_iter().find(|r| r.urn == urn))
}

fn raw_resources(untyped: &Value) -> Result<&[Value]> {
    match untyped.get("deployment").and_then(|d| d.get("resources")) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(resources)) => Ok(resources),
        Some(_) => Err(Error::internal("a stored deployment's resources are not a list")),
    }
}

fn str_field<'a>(r: &'a Value, name: &str) -> Option<&'a str> {
    r.get(name).and_then(Value::as_str)
}

fn bool_field(r: &Value, name: &str) -> bool {
    r.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn strings<'a>(r: &'a Value, name: &str) -> Vec<&'a str> {
    match r.get(name) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The view of one stored resource; None for an entry without a URN (never written by the CLI,
/// which validates deployments before it sends them).
fn view<'a>(
    r: &'a Value,
    providers: &std::collections::HashMap<(&str, &str), &'a Value>,
) -> Option<Resource<'a>> {
    let provider_inputs = str_field(r, "provider")
        .and_then(|reference| reference.rsplit_once(super::urn::DELIMITER))
        .and_then(|key| providers.get(&key).copied());
    Some(Resource {
        id: str_field(r, "id").filter(|id| !id.is_empty()),
        type_: str_field(r, "type").unwrap_or_default(),
        urn: str_field(r, "urn")?,
        custom: bool_field(r, "custom"),
        delete: bool_field(r, "delete"),
        dependencies: strings(r, "dependencies"),
        parent: str_field(r, "parent").filter(|p| !p.is_empty()),
        protect: bool_field(r, "protect"),
        external: bool_field(r, "external"),
        retain_on_delete: bool_field(r, "retainOnDelete"),
        additional_secret_outputs: strings(r, "additionalSecretOutputs"),
        aliases: strings(r, "aliases"),
        deleted_with: str_field(r, "deletedWith").filter(|d| !d.is_empty()),
        init_errors: strings(r, "initErrors"),
        inputs: r.get("inputs").unwrap_or(&EMPTY_OBJECT),
        outputs: r.get("outputs").unwrap_or(&EMPTY_OBJECT),
        provider_inputs,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({"version": 3, "deployment": {"manifest": {}, "resources": [
            {"urn": "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev", "type": "pulumi:pulumi:Stack",
             "custom": false, "outputs": {"url": "x"}},
            {"urn": "urn:pulumi:dev::p::pulumi:providers:aws::default", "type": "pulumi:providers:aws",
             "custom": true, "id": "prov-1", "inputs": {"region": "eu-west-1"}},
            {"urn": "urn:pulumi:dev::p::aws:s3/bucket:Bucket::b", "type": "aws:s3/bucket:Bucket",
             "custom": true, "id": "b-123", "protect": true,
             "parent": "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev",
             "provider": "urn:pulumi:dev::p::pulumi:providers:aws::default::prov-1",
             "dependencies": ["urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev"],
             "inputs": {"acl": "private"},
             "outputs": {"secret": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:abc"}}}
        ]}})
    }

    #[test]
    fn a_resource_is_shown_with_its_providers_inputs_and_secrets_as_stored() {
        let d = deployment();
        let all = list(&d).unwrap();
        assert_eq!(all.len(), 3);
        let b = find(&d, "urn:pulumi:dev::p::aws:s3/bucket:Bucket::b").unwrap().unwrap();
        let shown = serde_json::to_value(&b).unwrap();
        assert_eq!(shown["type"], "aws:s3/bucket:Bucket");
        assert_eq!(shown["id"], "b-123");
        assert_eq!(shown["protect"], true);
        assert_eq!(shown["providerInputs"], json!({"region": "eu-west-1"}));
        assert_eq!(shown["outputs"]["secret"]["ciphertext"], "v1:abc");
        assert_eq!(shown["dependencies"].as_array().unwrap().len(), 1);
        let stack = serde_json::to_value(&all[0]).unwrap();
        assert!(stack.get("id").is_none() && stack.get("providerInputs").is_none());
        assert_eq!(stack["inputs"], json!({}));
        assert!(find(&d, "urn:pulumi:dev::p::x::missing").unwrap().is_none());
    }

    #[test]
    fn an_empty_deployment_has_no_resources() {
        let empty: Value = serde_json::from_str(super::super::deployments::EMPTY).unwrap();
        assert!(list(&empty).unwrap().is_empty());
    }
}
