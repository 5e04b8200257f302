//! A stack's deployment settings (`…/deployments/settings`): where its program comes from (a
//! git repository, branch or commit, directory), how to run it (environment variables,
//! pre-run commands, options) and hints for the executor. One item per stack
//! (`STACK#<id>`/`DEPLOYSETTINGS`), its body the settings as JSON with every secret sealed,
//! and a version that every change raises (changes are conditioned on it, so two merges
//! never lose one another).
//!
//! Settings Pulumi Cloud has that need what this server does not run are refused with a 400
//! that says so: the GitHub app and other VCS integrations (`gitHub`, `vcs`), Mercurial and
//! template sources, OIDC issuance, deployment roles and agent pools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::secret::{Secret, Value};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetaError, Value as Attr};
use crate::service::item_keys;
use crate::service::optimistic::{retry_on_conflict, written};

/// Sort key of the settings item under the stack's id partition.
pub const SETTINGS_SK: &str = "DEPLOYSETTINGS";
/// Most environment variables, pre-run commands.
const MAX_VARIABLES: usize = 200;
const MAX_COMMANDS: usize = 50;
/// Longest string anywhere in the settings.
const MAX_TEXT: usize = 8192;

/// `ExecutorContext`: which image runs the deployment. A hint: the runner here is one image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ExecutorContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_image: Option<DockerImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_root_path: Option<String>,
}

/// `DockerImage`: a bare reference, or the object with credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "ImageWire")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DockerImage {
    #[serde(default)]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ImageCredentials>,
}

/// How a client may send an image.
#[derive(Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
enum ImageWire {
    Reference(String),
    Object {
        #[serde(default)]
        reference: String,
        #[serde(default, rename = "isDefault")]
        is_default: Option<bool>,
        #[serde(default)]
        credentials: Option<ImageCredentials>,
    },
}

impl From<ImageWire> for DockerImage {
    fn from(w: ImageWire) -> DockerImage {
        match w {
            ImageWire::Reference(reference) => DockerImage { reference, ..Default::default() },
            ImageWire::Object { reference, is_default, credentials } => {
                DockerImage { reference, is_default, credentials }
            }
        }
    }
}

/// `DockerImageCredentials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ImageCredentials {
    pub username: String,
    pub password: Secret,
}

/// `SourceContext`: only git sources are served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SourceContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
}

/// `SourceContextGit`: a repository the runner clones with `git` (any URL `git clone` takes,
/// `file://` among them), at a branch, tag or commit, the program in `repoDir`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct GitSource {
    #[serde(default, alias = "repoURL", skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_auth: Option<GitAuth>,
}

/// `GitAuthConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct GitAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_auth: Option<SshAuth>,
}

/// `BasicAuth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BasicAuth {
    pub user_name: Secret,
    pub password: Secret,
}

/// `SSHAuth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SshAuth {
    pub ssh_private_key: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

/// `OperationContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OperationContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_run_commands: Option<Vec<String>>,
    /// The default operation of a deployment that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<super::Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_variables: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
}

/// `OperationContextOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Options {
    /// No `pulumi install` before the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_install_dependencies: Option<bool>,
    /// Accepted; each deployment here runs its own operation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_intermediate_deployments: Option<bool>,
    /// The shell pre-run commands run in (`bash` unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// A `destroy` also removes the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after_destroy: Option<bool>,
    /// A drift run that finds drift follows with an `up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_if_drift_detected: Option<bool>,
}

/// `CacheOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CacheOptions {
    #[serde(default)]
    pub enable: bool,
}

/// The settings as requested and stored (`DeploymentSettingsRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_context: Option<ExecutorContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_context: Option<SourceContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<OperationContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_options: Option<CacheOptions>,
}

/// `DeploymentSettings`: the stored settings with their version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Versioned {
    pub version: i64,
    #[serde(flatten)]
    pub settings: Settings,
}

/// Features a request may name that this server does not serve, with why (a 400 each).
const UNSERVED: &[(&str, &str)] = &[
    ("gitHub", "the GitHub app is not served here; use sourceContext.git with gitAuth"),
    ("vcs", "VCS integrations are not served here; use sourceContext.git with gitAuth"),
    ("agentPoolID", "agent pools are not served here: the runner runs in this account"),
    ("sourceContext.hg", "Mercurial sources are not served here; use sourceContext.git"),
    ("sourceContext.template", "template sources are not served here; use sourceContext.git"),
    (
        "operationContext.oidc",
        "OIDC issuance is not served here; give credentials as secret environment variables",
    ),
    ("operationContext.role", "deployment roles are not served here"),
];

/// Reads a request body: 400 for features not served, unknown fields, bad values.
pub fn parse(body: &Json) -> Result<Settings> {
    let Some(fields) = body.as_object() else {
        return Err(Error::BadRequest("deployment settings are a JSON object".into()));
    };
    for (path, why) in UNSERVED {
        let mut at = Some(body);
        for part in path.split('.') {
            at = at.and_then(|v| v.get(part));
        }
        if at.is_some_and(|v| !v.is_null()) {
            return Err(Error::BadRequest(format!("{path}: {why}")));
        }
    }
    let mut body = Json::Object(fields.clone());
    // Nulls of what is not served mean "not set": drop them before the strict read.
    if let Some(obj) = body.as_object_mut() {
        for key in ["gitHub", "vcs", "agentPoolID", "source"] {
            obj.remove(key);
        }
    }
    let settings: Settings = serde_json::from_value(body)
        .map_err(|e| Error::BadRequest(format!("invalid deployment settings: {e}")))?;
    check(&settings)?;
    Ok(settings)
}

fn check(s: &Settings) -> Result<()> {
    let too_long = |what: &str, text: &str| -> Result<()> {
        if text.len() > MAX_TEXT {
            return Err(Error::BadRequest(format!("{what} is over {MAX_TEXT} bytes")));
        }
        Ok(())
    };
    if let Some(op) = &s.operation_context {
        let vars = op.environment_variables.as_ref();
        if vars.is_some_and(|v| v.len() > MAX_VARIABLES) {
            return Err(Error::BadRequest(format!(
                "at most {MAX_VARIABLES} environment variables"
            )));
        }
        for (name, value) in vars.into_iter().flatten() {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::BadRequest(format!(
                    "environment variable name {:?}: letters, digits and underscores, not starting with a digit",
                    name.chars().take(64).collect::<String>()
                )));
            }
            if let Value::Plain(v) | Value::Unsealed(v) = value {
                too_long(&format!("environment variable {name}"), v)?;
            }
        }
        let commands = op.pre_run_commands.as_deref().unwrap_or_default();
        if commands.len() > MAX_COMMANDS {
            return Err(Error::BadRequest(format!("at most {MAX_COMMANDS} pre-run commands")));
        }
        for c in commands {
            too_long("a pre-run command", c)?;
        }
        let shell = op.options.as_ref().and_then(|o| o.shell.as_deref());
        if shell.is_some_and(|sh| sh.is_empty() || sh.contains(char::is_whitespace)) {
            return Err(Error::BadRequest("options.shell is one program name or path".into()));
        }
    }
    if let Some(git) = s.source_context.as_ref().and_then(|c| c.git.as_ref()) {
        for (what, v) in [
            ("repoUrl", &git.repo_url),
            ("branch", &git.branch),
            ("repoDir", &git.repo_dir),
            ("commit", &git.commit),
            ("tag", &git.tag),
        ] {
            let Some(v) = v else { continue };
            too_long(what, v)?;
            // These reach `git` as arguments: never as options.
            if v.starts_with('-') {
                return Err(Error::BadRequest(format!(
                    "sourceContext.git.{what} cannot start with '-'"
                )));
            }
        }
        if git.repo_dir.as_deref().is_some_and(|d| d.split('/').any(|p| p == "..")) {
            return Err(Error::BadRequest(
                "sourceContext.git.repoDir stays inside the repository".into(),
            ));
        }
        let refs = [&git.branch, &git.commit, &git.tag].iter().filter(|v| v.is_some()).count();
        if refs > 1 {
            return Err(Error::BadRequest(
                "sourceContext.git: give one of branch, commit and tag".into(),
            ));
        }
    }
    Ok(())
}

/// Every secret of the settings, to seal or check.
fn secrets_mut(s: &mut Settings) -> Vec<&mut Value> {
    let mut out: Vec<&mut Value> = Vec::new();
    if let Some(op) = s.operation_context.as_mut() {
        if let Some(vars) = op.environment_variables.as_mut() {
            out.extend(vars.values_mut());
        }
    }
    if let Some(auth) =
        s.source_context.as_mut().and_then(|c| c.git.as_mut()).and_then(|g| g.git_auth.as_mut())
    {
        if let Some(t) = auth.access_token.as_mut() {
            out.push(&mut t.0);
        }
        if let Some(b) = auth.basic_auth.as_mut() {
            out.push(&mut b.user_name.0);
            out.push(&mut b.password.0);
        }
        if let Some(k) = auth.ssh_auth.as_mut() {
            out.push(&mut k.ssh_private_key.0);
            if let Some(p) = k.password.as_mut() {
                out.push(&mut p.0);
            }
        }
    }
    if let Some(c) = s
        .executor_context
        .as_mut()
        .and_then(|e| e.executor_image.as_mut())
        .and_then(|i| i.credentials.as_mut())
    {
        out.push(&mut c.password.0);
    }
    out
}

/// Seals every plaintext secret for the stack and checks that every ciphertext is its own.
pub async fn seal(app: &App, stack_id: &str, s: &mut Settings) -> Result<()> {
    for v in secrets_mut(s) {
        v.check(app, stack_id).await?;
        v.seal(app, stack_id).await?;
    }
    Ok(())
}

/// Deep merge of JSON objects: `patch`'s values replace `base`'s, objects merge, `null`
/// removes (what `POST …/deployments/settings` does to the stored settings).
pub fn merge(base: &mut Json, patch: &Json) {
    match (base, patch) {
        (Json::Object(b), Json::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Json::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

async fn read(app: &App, stack_id: &str) -> Result<Option<(Settings, i64)>> {
    let item = app.ports.meta.get(&item_keys::stack_id_pk(stack_id), SETTINGS_SK).await?;
    let Some(item) = item else { return Ok(None) };
    let doc = item.s("doc").ok_or_else(|| Error::internal("deployment settings without doc"))?;
    let settings = serde_json::from_str(doc)
        .map_err(|e| Error::internal(format!("stored deployment settings do not read: {e}")))?;
    Ok(Some((settings, item.n("version").unwrap_or(0))))
}

/// The stack's settings, or None.
pub async fn get(app: &App, stack_id: &str) -> Result<Option<Versioned>> {
    Ok(read(app, stack_id).await?.map(|(settings, version)| Versioned { version, settings }))
}

/// How a change applies to what is stored.
pub enum Change<'a> {
    /// `PUT`: the request is the whole settings.
    Replace(&'a Json),
    /// `POST`: the request merges into them.
    Merge(&'a Json),
}

/// Replaces or merges the stack's settings; answers what is stored now.
pub async fn change(app: &App, stack_id: &str, change: Change<'_>) -> Result<Versioned> {
    let meta = app.ports.meta.as_ref();
    let pk = item_keys::stack_id_pk(stack_id);
    let outcome = retry_on_conflict!(8, async {
        let current = read(app, stack_id).await?;
        let mut settings = match (&change, &current) {
            (Change::Replace(body), _) | (Change::Merge(body), None) => parse(body)?,
            (Change::Merge(patch), Some((stored, _))) => {
                let mut doc = serde_json::to_value(stored)
                    .map_err(|e| Error::internal(format!("settings do not serialise: {e}")))?;
                merge(&mut doc, patch);
                parse(&doc)?
            }
        };
        seal(app, stack_id, &mut settings).await?;
        let version = current.as_ref().map(|(_, v)| *v).unwrap_or(0) + 1;
        let doc = serde_json::to_string(&settings)
            .map_err(|e| Error::internal(format!("settings do not serialise: {e}")))?;
        let item = Item::new(pk.clone(), SETTINGS_SK)
            .with("doc", Attr::S(doc))
            .with("version", Attr::N(version));
        let cond = match &current {
            None => Condition::NotExists,
            Some((_, v)) => Condition::Equals("version".into(), Attr::N(*v)),
        };
        written(meta.put(item, Some(cond)).await, Versioned { version, settings })
    })?;
    outcome.ok_or_else(|| Error::Conflict("the settings changed meanwhile; try again".into()))
}

/// Removes the stack's settings; true when there were some.
pub async fn delete(app: &App, stack_id: &str) -> Result<bool> {
    let meta = app.ports.meta.as_ref();
    let pk = item_keys::stack_id_pk(stack_id);
    match meta.delete(&pk, SETTINGS_SK, Some(Condition::Exists)).await {
        Ok(()) => Ok(true),
        Err(MetaError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_read_strictly_and_refuse_what_is_not_served() {
        let ok = json!({
            "sourceContext": {"git": {"repoURL": "file:///srv/app.git", "branch": "main",
                                      "repoDir": "infra"}},
            "operationContext": {"preRunCommands": ["make"],
                                 "environmentVariables": {"REGION": "eu", "KEY": {"secret": "k"}},
                                 "options": {"skipInstallDependencies": true}},
            "gitHub": null
        });
        let s = parse(&ok).unwrap();
        let git = s.source_context.unwrap().git.unwrap();
        assert_eq!(git.repo_url.as_deref(), Some("file:///srv/app.git"), "repoURL is repoUrl");
        let vars = s.operation_context.unwrap().environment_variables.unwrap();
        assert_eq!(vars["KEY"], Value::Unsealed("k".into()));
        for (bad, says) in [
            (json!({"gitHub": {"repository": "a/b"}}), "GitHub app"),
            (json!({"operationContext": {"oidc": {"aws": {}}}}), "OIDC"),
            (json!({"sourceContext": {"hg": {}}}), "Mercurial"),
            (json!({"colour": "blue"}), "unknown field"),
            (json!({"operationContext": {"environmentVariables": {"1X": "a"}}}), "name"),
            (json!({"sourceContext": {"git": {"branch": "--upload-pack=x"}}}), "'-'"),
            (json!({"sourceContext": {"git": {"repoDir": "../etc"}}}), "inside"),
            (json!({"sourceContext": {"git": {"branch": "a", "commit": "b"}}}), "one of"),
            (json!({"operationContext": {"options": {"shell": "sh -c"}}}), "shell"),
            (json!([1]), "object"),
        ] {
            let err = parse(&bad).expect_err(says);
            assert_eq!(err.status().as_u16(), 400);
            assert!(err.to_string().contains(says), "{err} should say {says}");
        }
    }

    #[test]
    fn merge_replaces_values_merges_objects_and_removes_nulls() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "b": [1], "c": 3});
        merge(&mut base, &json!({"a": {"y": 5, "z": 6}, "b": [2], "c": null}));
        assert_eq!(base, json!({"a": {"x": 1, "y": 5, "z": 6}, "b": [2]}));
    }

    proptest::proptest! {
        /// Any JSON a client sends is read or refused with a 400, never a panic.
        #[test]
        fn any_body_is_read_or_refused(text in "\\PC{0,200}") {
            if let Ok(body) = serde_json::from_str::<Json>(&text) {
                if let Err(e) = parse(&body) {
                    proptest::prop_assert_eq!(e.status().as_u16(), 400);
                }
            }
        }
    }
}
