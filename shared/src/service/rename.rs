//! `pulumi stack rename` (docs/PROTOCOL-NOTES.md: Stacks, #12; Service secrets provider; Stack
//! rename): moves a stack to a new stack name and/or project within its organization, rewriting
//! its deployment so its URNs name the new stack.
//!
//! The rewrite follows what Pulumi's own DIY backend does (`pkg/resource/edit/operations.go`,
//! `RenameStack`): every URN whose stack and project are the old ones becomes
//! `urn:pulumi:<newStack>::<newProject>::<qualified type>::<name>`, and a URN of the root
//! `pulumi:pulumi:Stack` resource also gets the name `<newProject>-<newStack>`. On top of that the
//! `service` secrets provider's `state.project`/`state.stack` are moved along (Service secrets
//! provider), since the CLI sends encrypt/decrypt calls to the stack named there.
//!
//! The stack keeps its immutable id, so its history, updates and secrets move with it. A stack
//! with a deployment gets a new version holding the rewritten deployment and a `rename` history
//! entry; the old item, the new item, the history entry and the update item are written in one
//! transaction.

use serde_json::{Map, Value as Json};

use super::deployments::{self, Summary};
use super::optimistic::{retry_on_conflict, written, Attempt};
use super::updates::{self, Status, Update};
use super::{history, item_keys, stacks};
use crate::app::App;
use crate::error::{Error, Result};
use crate::names::{ProjectName, StackName, StackRef};
use crate::ports::{Condition, TransactOp, Value};

/// Key of the signature of special property values (`sig.Key`).
pub const SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
/// Signature of a resource reference (`sig.ResourceReference`).
pub const RESOURCE_REFERENCE_SIG: &str = "5cf8f73096256a8f31e491e813e4eb8e";
/// Signature of a secret (`sig.Secret`).
pub const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";
/// Signature of an output value (`sig.OutputValue`).
pub const OUTPUT_VALUE_SIG: &str = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
/// Type of the root component of every stack (`tokens.RootStackType`).
pub const ROOT_STACK_TYPE: &str = "pulumi:pulumi:Stack";
/// The ID Pulumi gives a provider reference rebuilt without one (`providers.UnknownID`).
pub const UNKNOWN_PROVIDER_ID: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

use super::urn::{format as format_urn, parse as parse_urn, DELIMITER as URN_DELIMITER};

/// A stack's names as they appear in URNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackNames<'a> {
    /// Project name.
    pub project: &'a str,
    /// Stack name.
    pub stack: &'a str,
}

/// Rewrites URNs from one stack to another.
struct Renamer<'a> {
    old: StackNames<'a>,
    new: StackNames<'a>,
}

impl Renamer<'_> {
    /// The renamed URN, or None when `urn` is not a URN of the old stack.
    fn urn(&self, urn: &str) -> Option<String> {
        let parts = parse_urn(urn)?;
        if parts.stack != self.old.stack || parts.project != self.old.project {
            return None;
        }
        let (stack, project) = (self.new.stack, self.new.project);
        let root_name;
        let name = if parts.qualified_type == ROOT_STACK_TYPE {
            // The root stack resource is named `<project>-<stack>`, whatever it was named before.
            root_name = format!("{project}-{stack}");
            root_name.as_str()
        } else {
            parts.name
        };
        let renamed = format_urn(stack, project, parts.qualified_type, name);
        (renamed != urn).then_some(renamed)
    }

    /// Renames a string value holding a URN; other values are left alone.
    fn urn_value(&self, v: &mut Json) -> bool {
        if let Json::String(s) = v {
            if let Some(renamed) = self.urn(s) {
                *s = renamed;
                return true;
            }
        }
        false
    }

    /// Renames every URN string of an array value.
    fn urn_array(&self, v: &mut Json) -> bool {
        let mut changed = false;
        if let Json::Array(items) = v {
            for item in items {
                changed |= self.urn_value(item);
            }
        }
        changed
    }

    /// Renames the URN part of a provider reference `<urn>::<id>`, as Pulumi does: the
    /// reference must parse (the URN must be a provider's), and an empty ID becomes
    /// [`UNKNOWN_PROVIDER_ID`] when the reference is rebuilt.
    fn provider(&self, v: &mut Json, owner: &str) -> Result<bool> {
        let Json::String(reference) = v else { return Ok(false) };
        if reference.is_empty() {
            return Ok(false);
        }
        let bad = |why: String| {
            Error::BadRequest(format!(
                "could not rename the stack: parsing provider reference for {owner:?}: {why}"
            ))
        };
        let Some(split) = reference.rfind(URN_DELIMITER) else {
            return Err(bad(format!(
                "expected '{URN_DELIMITER}' in provider reference '{reference}'"
            )));
        };
        let (urn, id) = (&reference[..split], &reference[split + URN_DELIMITER.len()..]);
        let Some(parts) = parse_urn(urn) else {
            return Err(bad(format!("{urn} is not a valid URN")));
        };
        let base_type = parts.qualified_type.rsplit('$').next().unwrap_or_default();
        if base_type.strip_prefix("pulumi:providers:").is_none_or(str::is_empty) {
            return Err(bad(format!("{urn} is not the URN of a provider")));
        }
        let Some(renamed) = self.urn(urn) else { return Ok(false) };
        let id = if id.is_empty() { UNKNOWN_PROVIDER_ID } else { id };
        *reference = format!("{renamed}{URN_DELIMITER}{id}");
        Ok(true)
    }

    /// Renames resource references inside a property value (`renameSerializedPropertyValue`):
    /// the `urn` of resource references, the `dependencies` and `value` of output values, and
    /// the same inside secrets whose plaintext or ciphertext is itself JSON (a ciphertext
    /// normally is not, and then stays as it is). Plain strings are never touched.
    fn property(&self, v: &mut Json) -> bool {
        match v {
            Json::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.property(item);
                }
                changed
            }
            Json::Object(map) => {
                let sig = map.get(SIG_KEY).and_then(Json::as_str).map(str::to_string);
                match sig.as_deref() {
                    Some(RESOURCE_REFERENCE_SIG) => {
                        map.get_mut("urn").is_some_and(|urn| self.urn_value(urn))
                    }
                    Some(SECRET_SIG) => {
                        let mut changed = false;
                        for key in ["plaintext", "ciphertext"] {
                            if let Some(inner) = map.get_mut(key) {
                                changed |= self.serialized_secret(inner);
                            }
                        }
                        changed
                    }
                    Some(OUTPUT_VALUE_SIG) => {
                        let mut changed = false;
                        if let Some(value) = map.get_mut("value") {
                            changed |= self.property(value);
                        }
                        if let Some(deps) = map.get_mut("dependencies") {
                            changed |= self.urn_array(deps);
                        }
                        changed
                    }
                    _ => {
                        let mut changed = false;
                        for value in map.values_mut() {
                            changed |= self.property(value);
                        }
                        changed
                    }
                }
            }
            _ => false,
        }
    }

    /// A secret's `plaintext`/`ciphertext` string: when it is JSON holding something to rename,
    /// it is replaced by the renamed JSON; otherwise it stays byte for byte.
    fn serialized_secret(&self, v: &mut Json) -> bool {
        let Json::String(text) = v else { return false };
        if text.is_empty() {
            return false;
        }
        let Ok(mut inner) = serde_json::from_str::<Json>(text) else { return false };
        if !self.property(&mut inner) {
            return false;
        }
        match serde_json::to_string(&inner) {
            Ok(renamed) => {
                *text = renamed;
                true
            }
            Err(_) => false,
        }
    }

    /// Rewrites one resource state (`rewriteState`).
    fn resource(&self, res: &mut Map<String, Json>) -> Result<()> {
        for key in ["urn", "parent", "deletedWith", "viewOf"] {
            if let Some(v) = res.get_mut(key) {
                self.urn_value(v);
            }
        }
        for key in ["dependencies", "replaceWith", "aliases"] {
            if let Some(v) = res.get_mut(key) {
                self.urn_array(v);
            }
        }
        if let Some(Json::Object(deps)) = res.get_mut("propertyDependencies") {
            for v in deps.values_mut() {
                self.urn_array(v);
            }
        }
        // Named by the (already renamed) URN in errors, as Pulumi does.
        let owner = res.get("urn").and_then(Json::as_str).unwrap_or_default().to_string();
        if let Some(v) = res.get_mut("provider") {
            self.provider(v, &owner)?;
        }
        for key in ["inputs", "outputs"] {
            if let Some(Json::Object(props)) = res.get_mut(key) {
                for v in props.values_mut() {
                    self.property(v);
                }
            }
        }
        if let Some(v) = res.get_mut("replacementTrigger") {
            self.property(v);
        }
        Ok(())
    }
}

/// Rewrites an `UntypedDeployment` (`{"version","features"?,"deployment"}`) of stack `old` into one
/// of stack `new` (docs/PROTOCOL-NOTES.md, Stack rename): the URNs of the old stack in `resources`
/// and `pending_operations[].resource` (also under `pendingOperations`, the key delta checkpoints
/// use), and the `service` secrets provider's project and stack. Everything else is left as it is;
/// note that `serde_json` sorts object keys, so the key order of the result may differ. 400 when a
/// provider reference cannot be parsed (Pulumi refuses those too).
pub fn rename_deployment(
    untyped: &mut Json,
    old: StackNames<'_>,
    new: StackNames<'_>,
) -> Result<()> {
    let Some(deployment) = untyped.get_mut("deployment").and_then(Json::as_object_mut) else {
        return Err(Error::BadRequest("could not deserialize deployment: not an object".into()));
    };
    let renamer = Renamer { old, new };
    if let Some(Json::Array(resources)) = deployment.get_mut("resources") {
        for res in resources {
            if let Json::Object(res) = res {
                renamer.resource(res)?;
            }
        }
    }
    for key in ["pending_operations", "pendingOperations"] {
        if let Some(Json::Array(ops)) = deployment.get_mut(key) {
            for op in ops {
                if let Some(Json::Object(res)) = op.get_mut("resource") {
                    renamer.resource(res)?;
                }
            }
        }
    }
    if let Some(Json::Object(provider)) = deployment.get_mut("secrets_providers") {
        if provider.get("type").and_then(Json::as_str) == Some("service") {
            if let Some(Json::Object(state)) = provider.get_mut("state") {
                let names_old = state.get("project").and_then(Json::as_str) == Some(old.project)
                    && state.get("stack").and_then(Json::as_str) == Some(old.stack);
                if names_old {
                    state.insert("project".into(), Json::String(new.project.into()));
                    state.insert("stack".into(), Json::String(new.stack.into()));
                }
            }
        }
    }
    Ok(())
}

fn exists_conflict(target: &StackRef) -> Error {
    // The CLI recognises "already exists" in a 409.
    Error::Conflict(format!("stack '{target}' already exists"))
}

async fn target_exists(app: &App, target: &StackRef) -> Result<bool> {
    match stacks::get(app.ports.meta.as_ref(), target).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The stack's deployment rewritten for its new names, as the bytes and summary of its next
/// version.
async fn renamed_deployment(
    app: &App,
    key: &str,
    old: StackNames<'_>,
    new: StackNames<'_>,
) -> Result<(Vec<u8>, Summary)> {
    let mut untyped: Json = deployments::read_untyped(app.ports.blobs.as_ref(), key).await?;
    rename_deployment(&mut untyped, old, new)?;
    let resource_count = untyped
        .get("deployment")
        .and_then(|d| d.get("resources"))
        .and_then(Json::as_array)
        .map_or(0, |r| r.len() as i64);
    let bytes = serde_json::to_vec(&untyped).map_err(|e| Error::caused("JSON encoding", e))?;
    Ok((bytes, Summary { resource_count }))
}

/// `POST …/rename`: renames the stack `r` to `new_project`/`new_stack` in the same organization.
/// 409 while an update holds the stack or when the target exists; nothing happens when the
/// names are unchanged. An abandoned update (lease lapsed) is ended as failed first, so the state
/// it checkpointed is published, and renamed, rather than lost.
pub async fn rename(
    app: &App,
    r: &StackRef,
    new_project: &ProjectName,
    new_stack: &StackName,
    author: &str,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let target =
        StackRef { org: r.org.clone(), project: new_project.clone(), stack: new_stack.clone() };
    let old = StackNames { project: r.project.as_str(), stack: r.stack.as_str() };
    let new = StackNames { project: new_project.as_str(), stack: new_stack.as_str() };
    let renamed = retry_on_conflict!(8, async {
        let now = app.clock.now();
        let stack = stacks::get(meta, r).await?;
        if updates::live_update(meta, &stack, now).await?.is_some() {
            return Err(Error::Conflict(format!(
                "an update of stack '{r}' is in progress; the stack cannot be renamed now"
            )));
        }
        if let Some(active) = &stack.active_update {
            match updates::get(meta, &stack.id, active).await {
                Ok(abandoned) if abandoned.status == Status::Running => {
                    updates::finalize_expired(app, abandoned).await?;
                    return Ok(Attempt::Raced);
                }
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if old == new {
            return Ok(Attempt::Done(()));
        }
        if target_exists(app, &target).await? {
            return Err(exists_conflict(&target));
        }
        // Refused while a deployment of the stack runs, like an update; its schedules and queued
        // runs find their stack by name: they move with it.
        let sid = stack.id.as_str();
        let deploy_ops =
            crate::service::deploy::renamed_ops(meta, sid, new.project, new.stack).await?;

        let mut moved = stack.clone();
        moved.project = new.project.to_string();
        moved.stack = new.stack.to_string();
        moved.rev = stack.rev + 1;
        let mut ops = vec![TransactOp::Delete {
            pk: item_keys::org_pk(&stack.org),
            sk: item_keys::stack_sk(&stack.project, &stack.stack),
            condition: Some(Condition::Equals("rev".into(), Value::N(stack.rev))),
        }];
        if let Some(key) = &stack.deployment_key {
            let (bytes, summary) = renamed_deployment(app, key, old, new).await?;
            // The next version's blob key is also where a finishing update would publish: write
            // only if nothing has touched the stack while the deployment was being rewritten.
            if stacks::get(meta, r).await?.rev != stack.rev {
                return Ok(Attempt::Raced);
            }
            let version = stack.version + 1;
            let new_key = deployments::version_key(&stack.id, version);
            app.ports.blobs.put(&new_key, deployments::gzip(&bytes)?).await?;
            moved.version = version;
            moved.deployment_key = Some(new_key.clone());
            moved.last_update = Some(now);
            let update = Update::instant(&moved, "rename", author, now, version);
            ops.push(history::entry_op(&update, version, Some(&new_key), &summary)?);
            ops.push(update.create_op());
        }
        ops.push(TransactOp::Put(moved.to_item()?, Some(Condition::NotExists)));
        ops.extend(deploy_ops);
        let attempt = written(meta.transact(ops).await, ())?;
        // Raced: the target appeared, or the source changed (or went away) meanwhile and the
        // next try starts over.
        if matches!(attempt, Attempt::Raced) && target_exists(app, &target).await? {
            return Err(exists_conflict(&target));
        }
        Ok(attempt)
    })?;
    renamed.ok_or_else(|| {
        Error::Conflict(format!("stack '{r}' is being changed concurrently, try again"))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const FOO: StackNames<'static> = StackNames { project: "countdown", stack: "foo" };
    const BAR: StackNames<'static> = StackNames { project: "newproj", stack: "bar" };
    const DEV: StackNames<'static> = StackNames { project: "proj", stack: "dev" };
    const PROD: StackNames<'static> = StackNames { project: "app", stack: "prod" };

    /// The real checkpoint fixture as an `UntypedDeployment`; fails loudly when missing.
    fn fixture() -> Json {
        let text = crate::fixtures::text("checkpoints/checkpoint-v3.json");
        let v: Json = serde_json::from_str(&text).expect("fixture JSON");
        json!({"version": v["version"], "deployment": v["checkpoint"]["latest"]})
    }

    fn one(resource: Json) -> Json {
        json!({"version": 3, "deployment": {"manifest": {"time": "t", "magic": "", "version": ""},
                                            "resources": [resource]}})
    }

    fn renamed(mut untyped: Json, old: StackNames<'_>, new: StackNames<'_>) -> Json {
        rename_deployment(&mut untyped, old, new).expect("rename");
        untyped
    }

    const ASSET_SIG: &str = "c44067f5952c0a294b673a41bacd8c17";
    const ARCHIVE_SIG: &str = "0def7320c3a5731c473e5ecbe6d01bc7";

    /// Replaces `from` by `to` in every string of `v` except those inside assets and archives,
    /// and returns the strings containing `from` that were inside them.
    fn swap_outside_assets(v: &mut Json, from: &str, to: &str, kept: &mut Vec<String>) {
        match v {
            Json::String(s) => *s = s.replace(from, to),
            Json::Array(items) => {
                items.iter_mut().for_each(|i| swap_outside_assets(i, from, to, kept))
            }
            Json::Object(map) => {
                let sig = map.get(SIG_KEY).and_then(Json::as_str);
                if sig == Some(ASSET_SIG) || sig == Some(ARCHIVE_SIG) {
                    kept.extend(v.to_string().matches(from).map(str::to_string));
                } else {
                    map.values_mut().for_each(|i| swap_outside_assets(i, from, to, kept));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn fixture_moves_to_the_new_stack_and_back() {
        let (old_prefix, new_prefix) = ("urn:pulumi:foo::countdown::", "urn:pulumi:bar::newproj::");
        let original = fixture();
        let text = original.to_string();
        assert!(text.contains(old_prefix), "fixture uses stack foo");
        let count = original["deployment"]["resources"].as_array().expect("resources").len();
        assert_eq!(count, 30);

        let moved = renamed(original.clone(), FOO, BAR);
        assert_eq!(moved["deployment"]["resources"].as_array().map(Vec::len), Some(count));
        for res in moved["deployment"]["resources"].as_array().into_iter().flatten() {
            assert!(res["urn"].as_str().is_some_and(|u| u.starts_with(new_prefix)), "{res}");
            if let Some(parent) = res.get("parent") {
                assert!(parent.as_str().is_some_and(|u| u.starts_with(new_prefix)), "{res}");
            }
            for deps in res["propertyDependencies"].as_object().into_iter().flat_map(|m| m.values())
            {
                for dep in deps.as_array().into_iter().flatten() {
                    assert!(dep.as_str().is_some_and(|u| u.starts_with(new_prefix)), "{res}");
                }
            }
        }
        // Nothing but the URNs changed. The fixture's lambda code (asset text) embeds URNs as
        // plain text: like Pulumi, those are left alone (rewriting them would break the asset's
        // hash), and they are the only old URNs left.
        let mut expected = original.clone();
        let mut kept = Vec::new();
        swap_outside_assets(&mut expected, old_prefix, new_prefix, &mut kept);
        assert_eq!(moved, expected);
        assert_eq!(moved.to_string().matches(old_prefix).count(), kept.len());
        assert_eq!(
            moved.to_string().matches(new_prefix).count(),
            text.matches(old_prefix).count() - kept.len()
        );
        assert_eq!(
            moved["deployment"]["secrets_providers"], original["deployment"]["secrets_providers"],
            "a non-service secrets provider is left alone"
        );
        assert_eq!(renamed(moved, BAR, FOO), original, "renaming back restores the original");
    }

    #[test]
    fn every_urn_field_of_a_resource_is_renamed() {
        let old = |rest: &str| format!("urn:pulumi:dev::proj::{rest}");
        let new = |rest: &str| format!("urn:pulumi:prod::app::{rest}");
        let res = json!({
            "urn": old("my:mod:Comp$aws:s3/bucket:Bucket::b"),
            "custom": true,
            "type": "aws:s3/bucket:Bucket",
            "parent": old("my:mod:Comp::c"),
            "dependencies": [old("a:b:C::x"), "urn:pulumi:other::proj::a:b:C::x"],
            "propertyDependencies": {"p": [old("a:b:C::y")], "q": []},
            "deletedWith": old("a:b:C::z"),
            "replaceWith": [old("a:b:C::w")],
            "aliases": [old("a:b:Old::b"), "urn:pulumi:dev::otherproj::a:b:C::b"],
            "viewOf": old("a:b:C::v"),
            "provider": format!("{}::0123-id", old("pulumi:providers:aws::default_6_0_0")),
            "protect": false,
            "id": "bucket-123",
        });
        let out = renamed(one(res), DEV, PROD);
        let r = &out["deployment"]["resources"][0];
        assert_eq!(r["urn"], new("my:mod:Comp$aws:s3/bucket:Bucket::b"));
        assert_eq!(r["parent"], new("my:mod:Comp::c"));
        assert_eq!(r["dependencies"], json!([new("a:b:C::x"), "urn:pulumi:other::proj::a:b:C::x"]));
        assert_eq!(r["propertyDependencies"], json!({"p": [new("a:b:C::y")], "q": []}));
        assert_eq!(r["deletedWith"], new("a:b:C::z"));
        assert_eq!(r["replaceWith"], json!([new("a:b:C::w")]));
        assert_eq!(
            r["aliases"],
            json!([new("a:b:Old::b"), "urn:pulumi:dev::otherproj::a:b:C::b"]),
            "only URNs of the old stack and project change"
        );
        assert_eq!(r["viewOf"], new("a:b:C::v"));
        assert_eq!(
            r["provider"],
            format!("{}::0123-id", new("pulumi:providers:aws::default_6_0_0"))
        );
        assert_eq!(r["id"], "bucket-123");
        assert_eq!(r["type"], "aws:s3/bucket:Bucket");
    }

    #[test]
    fn provider_references_follow_pulumi() {
        let provider = |p: &str| {
            one(json!({"urn": "urn:pulumi:dev::proj::a:b:C::x", "custom": true, "type": "a:b:C",
                       "provider": p}))
        };
        // A provider of another stack keeps its reference byte for byte.
        let other = "urn:pulumi:qa::proj::pulumi:providers:aws::default::id-1";
        let out = renamed(provider(other), DEV, PROD);
        assert_eq!(out["deployment"]["resources"][0]["provider"], other);
        // A rebuilt reference without an ID gets Pulumi's unknown ID.
        let out =
            renamed(provider("urn:pulumi:dev::proj::pulumi:providers:aws::default::"), DEV, PROD);
        assert_eq!(
            out["deployment"]["resources"][0]["provider"],
            format!("urn:pulumi:prod::app::pulumi:providers:aws::default::{UNKNOWN_PROVIDER_ID}")
        );
        // The name part may contain `::`; the ID is after the last one.
        let out =
            renamed(provider("urn:pulumi:dev::proj::pulumi:providers:k8s::a::b::id"), DEV, PROD);
        assert_eq!(
            out["deployment"]["resources"][0]["provider"],
            "urn:pulumi:prod::app::pulumi:providers:k8s::a::b::id"
        );
        // References that are not provider references are refused, as Pulumi does.
        for bad in ["no-delimiter", "urn:pulumi:dev::proj::a:b:C::x::id", "x::y::z::id"] {
            let mut d = provider(bad);
            assert!(
                matches!(rename_deployment(&mut d, DEV, PROD), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
        // An empty reference means the default provider: nothing to do.
        let out = renamed(provider(""), DEV, PROD);
        assert_eq!(out["deployment"]["resources"][0]["provider"], "");
    }

    #[test]
    fn resource_references_in_properties_are_renamed() {
        let reference = |urn: &str| json!({SIG_KEY: RESOURCE_REFERENCE_SIG, "urn": urn, "id": "i-1", "packageVersion": "6.0.0"});
        let secret_plain =
            json!({"nested": reference("urn:pulumi:dev::proj::a:b:C::s")}).to_string();
        let res = json!({
            "urn": "urn:pulumi:dev::proj::a:b:C::x", "custom": true, "type": "a:b:C",
            "inputs": {"ref": reference("urn:pulumi:dev::proj::a:b:C::y"),
                       "plain": "urn:pulumi:dev::proj::a:b:C::y",
                       "list": [1, {"deep": reference("urn:pulumi:dev::proj::a:b:C::z")}]},
            "outputs": {"ref": reference("urn:pulumi:dev::proj::a:b:C::y"),
                        "foreign": reference("urn:pulumi:qa::proj::a:b:C::y"),
                        "out": {SIG_KEY: OUTPUT_VALUE_SIG,
                                "value": reference("urn:pulumi:dev::proj::a:b:C::o"),
                                "dependencies": ["urn:pulumi:dev::proj::a:b:C::d"]},
                        "secret": {SIG_KEY: SECRET_SIG, "plaintext": secret_plain},
                        "sealed": {SIG_KEY: SECRET_SIG, "ciphertext": "AAAA=="},
                        "asset": {SIG_KEY: "c44067f5952c0a294b673a41bacd8c17", "hash": "h",
                                  "text": "urn:pulumi:dev::proj::a:b:C::y"}},
            "replacementTrigger": reference("urn:pulumi:dev::proj::a:b:C::t"),
        });
        let out = renamed(one(res), DEV, PROD);
        let r = &out["deployment"]["resources"][0];
        assert_eq!(r["inputs"]["ref"], reference("urn:pulumi:prod::app::a:b:C::y"));
        assert_eq!(r["inputs"]["ref"]["packageVersion"], "6.0.0");
        assert_eq!(r["inputs"]["ref"]["id"], "i-1");
        assert_eq!(r["inputs"]["plain"], "urn:pulumi:dev::proj::a:b:C::y", "plain strings stay");
        assert_eq!(r["inputs"]["list"][1]["deep"], reference("urn:pulumi:prod::app::a:b:C::z"));
        assert_eq!(r["outputs"]["ref"], reference("urn:pulumi:prod::app::a:b:C::y"));
        assert_eq!(r["outputs"]["foreign"], reference("urn:pulumi:qa::proj::a:b:C::y"));
        assert_eq!(r["outputs"]["out"]["value"], reference("urn:pulumi:prod::app::a:b:C::o"));
        assert_eq!(r["outputs"]["out"]["dependencies"], json!(["urn:pulumi:prod::app::a:b:C::d"]));
        let plain: Json =
            serde_json::from_str(r["outputs"]["secret"]["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(plain, json!({"nested": reference("urn:pulumi:prod::app::a:b:C::s")}));
        assert_eq!(r["outputs"]["sealed"]["ciphertext"], "AAAA==");
        assert_eq!(r["outputs"]["asset"]["text"], "urn:pulumi:dev::proj::a:b:C::y");
        assert_eq!(r["replacementTrigger"], reference("urn:pulumi:prod::app::a:b:C::t"));
    }

    #[test]
    fn the_root_stack_resource_is_renamed_everywhere() {
        let root = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev";
        let new_root = "urn:pulumi:prod::app::pulumi:pulumi:Stack::app-prod";
        let d = json!({"version": 3, "deployment": {"manifest": {}, "resources": [
            {"urn": root, "custom": false, "type": "pulumi:pulumi:Stack",
             "outputs": {"self": {SIG_KEY: RESOURCE_REFERENCE_SIG, "urn": root}}},
            {"urn": "urn:pulumi:dev::proj::a:b:C::x", "custom": true, "type": "a:b:C",
             "parent": root, "dependencies": [root]},
            // Pulumi renames a root stack URN whatever its name was.
            {"urn": "urn:pulumi:dev::proj::pulumi:pulumi:Stack::odd", "custom": false,
             "type": "pulumi:pulumi:Stack"},
            // A child of the root whose type is qualified is not itself a root.
            {"urn": "urn:pulumi:dev::proj::pulumi:pulumi:Stack$a:b:C::proj-dev", "custom": true,
             "type": "a:b:C"},
        ]}});
        let out = renamed(d, DEV, PROD);
        let rs = &out["deployment"]["resources"];
        assert_eq!(rs[0]["urn"], new_root);
        assert_eq!(rs[0]["outputs"]["self"]["urn"], new_root);
        assert_eq!(rs[1]["parent"], new_root);
        assert_eq!(rs[1]["dependencies"], json!([new_root]));
        assert_eq!(rs[2]["urn"], new_root);
        assert_eq!(rs[3]["urn"], "urn:pulumi:prod::app::pulumi:pulumi:Stack$a:b:C::proj-dev");
    }

    #[test]
    fn pending_operations_and_the_service_secrets_provider_move_too() {
        let res = |urn: &str| json!({"urn": urn, "custom": true, "type": "a:b:C", "parent": urn});
        let d = json!({"version": 4, "features": ["views"], "deployment": {
            "manifest": {"time": "t"},
            "secrets_providers": {"type": "service", "state": {
                "url": "https://api.example", "owner": "me", "project": "proj", "stack": "dev"}},
            "pending_operations": [{"type": "creating", "resource": res("urn:pulumi:dev::proj::a:b:C::p")}],
            "pendingOperations": [{"type": "deleting", "resource": res("urn:pulumi:dev::proj::a:b:C::q")}],
            "metadata": {"note": "urn:pulumi:dev::proj::a:b:C::p"},
        }});
        let out = renamed(d, DEV, PROD);
        let dep = &out["deployment"];
        assert_eq!(dep["pending_operations"][0]["resource"], res("urn:pulumi:prod::app::a:b:C::p"));
        assert_eq!(dep["pending_operations"][0]["type"], "creating");
        assert_eq!(dep["pendingOperations"][0]["resource"], res("urn:pulumi:prod::app::a:b:C::q"));
        assert_eq!(
            dep["secrets_providers"],
            json!({"type": "service", "state": {
                "url": "https://api.example", "owner": "me", "project": "app", "stack": "prod"}})
        );
        assert_eq!(dep["metadata"]["note"], "urn:pulumi:dev::proj::a:b:C::p", "left alone");
        assert_eq!(out["features"], json!(["views"]));
        assert_eq!(out["version"], 4);

        // A service provider naming another stack is left alone.
        let other = json!({"version": 3, "deployment": {"secrets_providers": {"type": "service",
            "state": {"owner": "me", "project": "proj", "stack": "qa"}}}});
        assert_eq!(renamed(other.clone(), DEV, PROD), other);
    }

    #[test]
    fn urns_of_other_stacks_and_non_urns_are_left_alone() {
        let res = json!({
            "urn": "urn:pulumi:devx::proj::a:b:C::x", "custom": true, "type": "a:b:C",
            "parent": "urn:pulumi:dev::projx::a:b:C::y",
            "dependencies": ["not a urn", "urn:pulumi:dev::proj", 7, null],
            "deletedWith": "",
        });
        let d = one(res);
        assert_eq!(renamed(d.clone(), DEV, PROD), d);
        // Renaming to the same names changes nothing.
        let f = fixture();
        assert_eq!(renamed(f.clone(), FOO, FOO), f);
        // Not a deployment at all.
        let mut bad = json!({"version": 3, "deployment": []});
        assert!(matches!(rename_deployment(&mut bad, DEV, PROD), Err(Error::BadRequest(_))));
    }
}
