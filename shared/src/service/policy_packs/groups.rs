//! Policy groups: which pack versions (with which config) apply to which stacks.
//!
//! * One item per group (`ORG#<org>` / `PGROUP#<name>`) with its stacks and enabled packs as
//!   JSON and a generation every write is conditioned on.
//! * Every organization has `default-policy-group`. It applies to every stack of the
//!   organization except those removed from it (new stacks are in it, as in Pulumi Cloud), and
//!   exists before anything is stored for it.
//! * A stack's required packs are those of every group it is in ([`required`]).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{get_version, latest, PackName};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, Value};
use crate::service::access::query_all;
use crate::service::item_keys;
use crate::service::optimistic::{retry_on_conflict, written};

/// The group every organization has (`apitype.DefaultPolicyGroup`).
pub const DEFAULT_GROUP: &str = "default-policy-group";
const GROUP_PREFIX: &str = "PGROUP#";

/// A stack named in a group (`AppPulumiStackReference`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct StackMember {
    pub name: String,
    pub routing_project: String,
}

/// A pack version enabled in a group (`AppPolicyPackMetadata`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EnabledPack {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub version_tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, Json>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

/// A policy group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub is_default: bool,
    /// Members; for the default group, the stacks removed from it instead.
    pub stacks: Vec<StackMember>,
    pub packs: Vec<EnabledPack>,
    /// Generation as read (None: not stored yet).
    gen: Option<i64>,
}

fn group_sk(name: &str) -> String {
    format!("{GROUP_PREFIX}{name}")
}

/// A group name (the pack name rules).
pub fn parse_group_name(name: &str) -> Result<String> {
    PackName::parse(name)
        .map(|n| n.as_str().to_string())
        .map_err(|_| Error::BadRequest(format!("invalid policy group name {name:?}")))
}

impl Group {
    fn empty_default() -> Group {
        Group {
            name: DEFAULT_GROUP.into(),
            is_default: true,
            stacks: vec![],
            packs: vec![],
            gen: None,
        }
    }

    fn from_item(item: &Item) -> Result<Group> {
        let corrupt = |what: &str| Error::internal(format!("policy group item lacks {what}"));
        let name = item.sk.strip_prefix(GROUP_PREFIX).ok_or_else(|| corrupt("name"))?;
        Ok(Group {
            name: name.to_string(),
            is_default: name == DEFAULT_GROUP,
            stacks: serde_json::from_str(item.s("stacks").unwrap_or("[]"))
                .map_err(|_| corrupt("stacks"))?,
            packs: serde_json::from_str(item.s("packs").unwrap_or("[]"))
                .map_err(|_| corrupt("packs"))?,
            gen: Some(item.n("gen").unwrap_or(0)),
        })
    }

    fn item(&self, org: &str) -> Result<Item> {
        Ok(Item::new(item_keys::org_pk(org), group_sk(&self.name))
            .with("stacks", Value::S(json_text(&self.stacks)?))
            .with("packs", Value::S(json_text(&self.packs)?))
            .with("gen", Value::N(self.gen.unwrap_or(0) + 1)))
    }

    fn condition(&self) -> Condition {
        match self.gen {
            None => Condition::NotExists,
            Some(g) => Condition::Equals("gen".into(), Value::N(g)),
        }
    }

    /// Whether the group applies to `project/stack`.
    pub fn applies_to(&self, project: &str, stack: &str) -> bool {
        let named = self.stacks.iter().any(|m| m.routing_project == project && m.name == stack);
        named != self.is_default
    }
}

fn json_text<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::caused("JSON encoding", e))
}

/// Every group of the organization, the default one first.
pub async fn list(meta: &dyn MetadataStore, org: &str) -> Result<Vec<Group>> {
    let items = query_all(meta, Query::prefix(item_keys::org_pk(org), GROUP_PREFIX, 500)).await?;
    let mut out = items.iter().map(Group::from_item).collect::<Result<Vec<_>>>()?;
    if !out.iter().any(|g| g.is_default) {
        out.push(Group::empty_default());
    }
    out.sort_by_key(|g| (!g.is_default, g.name.clone()));
    Ok(out)
}

/// Reads a group, or 404 (the default group always exists).
pub async fn get(meta: &dyn MetadataStore, org: &str, name: &str) -> Result<Group> {
    match meta.get(&item_keys::org_pk(org), &group_sk(name)).await? {
        Some(item) => Group::from_item(&item),
        None if name == DEFAULT_GROUP => Ok(Group::empty_default()),
        None => Err(Error::NotFound(format!("policy group {org}/{name} not found"))),
    }
}

/// Creates an empty group; 409 if it exists.
pub async fn create(meta: &dyn MetadataStore, org: &str, name: &str) -> Result<Group> {
    let name = parse_group_name(name)?;
    let group = Group { name, is_default: false, stacks: vec![], packs: vec![], gen: None };
    if group.name == DEFAULT_GROUP {
        return Err(Error::Conflict(format!("policy group {DEFAULT_GROUP} exists")));
    }
    match meta.put(group.item(org)?, Some(Condition::NotExists)).await {
        Ok(()) => Ok(group),
        Err(crate::ports::MetaError::ConditionFailed) => {
            Err(Error::Conflict(format!("policy group {org}/{} exists", group.name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes a group (not the default one); 404 if absent.
pub async fn delete(meta: &dyn MetadataStore, org: &str, name: &str) -> Result<()> {
    if name == DEFAULT_GROUP {
        return Err(Error::BadRequest(format!("the {DEFAULT_GROUP} cannot be deleted")));
    }
    match meta.delete(&item_keys::org_pk(org), &group_sk(name), Some(Condition::Exists)).await {
        Ok(()) => Ok(()),
        Err(crate::ports::MetaError::ConditionFailed) => {
            Err(Error::NotFound(format!("policy group {org}/{name} not found")))
        }
        Err(e) => Err(e.into()),
    }
}

/// One change of a group (`UpdatePolicyGroupRequest`); the service takes one or several.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Change {
    #[serde(default)]
    pub new_name: Option<String>,
    #[serde(default)]
    pub add_stack: Option<StackMember>,
    #[serde(default)]
    pub remove_stack: Option<StackMember>,
    #[serde(default)]
    pub add_policy_pack: Option<EnabledPack>,
    #[serde(default)]
    pub remove_policy_pack: Option<EnabledPack>,
    /// Anything else Pulumi Cloud takes (match rules, agent pools, Insights accounts): refused,
    /// rather than ignored, when set.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schemars(skip))]
    pub unsupported: std::collections::BTreeMap<String, Json>,
}

impl Change {
    /// 400 for a change this server does not make (a field it would otherwise ignore).
    pub fn check(&self) -> Result<()> {
        match self.unsupported.iter().find(|(_, v)| !v.is_null()) {
            Some((name, _)) => Err(Error::BadRequest(format!(
                "{name} is not supported: policy groups here name their stacks one by one"
            ))),
            None => Ok(()),
        }
    }
}

/// Applies `changes` to a group in one conditional write (all or none). A pack enabled
/// without a version tag means its newest version; enabling a pack replaces the version the
/// group had of it. Returns the group as written.
pub async fn change(app: &App, org: &str, name: &str, changes: &[Change]) -> Result<Group> {
    let meta = app.ports.meta.as_ref();
    // Resolve pack versions and check stacks once, before the write loop.
    let mut resolved = Vec::with_capacity(changes.len());
    for c in changes {
        c.check()?;
        let mut c = c.clone();
        if let Some(p) = &mut c.add_policy_pack {
            let pack = PackName::parse(&p.name)?;
            let v = if p.version_tag.is_empty() && p.version == 0 {
                latest(meta, org, &pack).await?
            } else if p.version_tag.is_empty() {
                super::versions(meta, org, &pack)
                    .await?
                    .into_iter()
                    .find(|v| v.version == p.version && v.complete)
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "policy pack {org}/{} has no version {}",
                            p.name, p.version
                        ))
                    })?
            } else {
                get_version(meta, org, &pack, &p.version_tag).await?
            };
            if !v.complete {
                return Err(Error::BadRequest(format!(
                    "policy pack {org}/{} version {} was never completely published",
                    v.name, v.tag
                )));
            }
            p.display_name = v.display_name.clone();
            p.version = v.version;
            p.version_tag = v.tag.clone();
        }
        if let Some(s) = &c.add_stack {
            let r = crate::names::StackRef {
                org: crate::names::OrgName::parse(org)?,
                project: crate::names::ProjectName::parse(&s.routing_project)?,
                stack: crate::names::StackName::parse(&s.name)?,
            };
            crate::service::stacks::get(meta, &r).await?;
        }
        if let Some(n) = &c.new_name {
            parse_group_name(n)?;
            if name == DEFAULT_GROUP {
                return Err(Error::BadRequest(format!("the {DEFAULT_GROUP} cannot be renamed")));
            }
        }
        resolved.push(c);
    }
    let outcome = retry_on_conflict!(8, async {
        let mut group = get(meta, org, name).await?;
        let old_name = group.name.clone();
        for c in &resolved {
            apply(&mut group, c);
        }
        if group.name == old_name {
            return written(meta.put(group.item(org)?, Some(group.condition())).await, group);
        }
        // A rename moves the item: the new name must be free, the old one unchanged.
        let moved = Group { gen: None, ..group.clone() };
        let ops = vec![
            crate::ports::TransactOp::Delete {
                pk: item_keys::org_pk(org),
                sk: group_sk(&old_name),
                condition: Some(group.condition()),
            },
            crate::ports::TransactOp::Put(moved.item(org)?, Some(Condition::NotExists)),
        ];
        match meta.transact(ops).await {
            Err(crate::ports::MetaError::ConditionFailed)
                if meta.get(&item_keys::org_pk(org), &group_sk(&moved.name)).await?.is_some() =>
            {
                Err(Error::Conflict(format!("policy group {org}/{} exists", moved.name)))
            }
            r => written(r, moved),
        }
    })?;
    outcome
        .ok_or_else(|| Error::Conflict("the policy group changed concurrently, try again".into()))
}

fn apply(group: &mut Group, c: &Change) {
    // For the default group, `stacks` lists the stacks removed from it.
    let (add, remove) = if group.is_default {
        (&c.remove_stack, &c.add_stack)
    } else {
        (&c.add_stack, &c.remove_stack)
    };
    if let Some(s) = add {
        if !group.stacks.contains(s) {
            group.stacks.push(s.clone());
            group.stacks.sort();
        }
    }
    if let Some(s) = remove {
        group.stacks.retain(|m| m != s);
    }
    if let Some(p) = &c.remove_policy_pack {
        group.packs.retain(|e| {
            e.name != p.name || (!p.version_tag.is_empty() && e.version_tag != p.version_tag)
        });
    }
    if let Some(p) = &c.add_policy_pack {
        group.packs.retain(|e| e.name != p.name);
        group.packs.push(p.clone());
    }
    if let Some(n) = &c.new_name {
        group.name = n.clone();
    }
}

/// The stacks a group applies to: its members, or for the default group every stack of the
/// organization not removed from it.
pub async fn members(
    meta: &dyn MetadataStore,
    org: &str,
    group: &Group,
) -> Result<Vec<StackMember>> {
    if !group.is_default {
        return Ok(group.stacks.clone());
    }
    let q = Query::prefix(item_keys::org_pk(org), item_keys::STACK_PREFIX, 500);
    let mut out = Vec::new();
    for item in &query_all(meta, q).await? {
        let stack = crate::service::stacks::Stack::from_item(item)?;
        if group.applies_to(&stack.project, &stack.stack) {
            out.push(StackMember { name: stack.stack, routing_project: stack.project });
        }
    }
    Ok(out)
}

/// A pack a stack's updates must run (`AppRequiredPolicy`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RequiredPolicy {
    pub name: String,
    pub version: i64,
    pub version_tag: String,
    pub display_name: String,
    /// A short-lived URL of the pack's archive (a plain GET, no credentials).
    pub pack_location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, Json>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

/// The packs every update of `project/stack` must run: those of each group it is in, once
/// per pack version, with download URLs.
pub async fn required(
    app: &App,
    org: &str,
    project: &str,
    stack: &str,
) -> Result<Vec<RequiredPolicy>> {
    let meta = app.ports.meta.as_ref();
    let mut out: Vec<RequiredPolicy> = Vec::new();
    for group in list(meta, org).await? {
        if !group.applies_to(project, stack) {
            continue;
        }
        for p in &group.packs {
            if out.iter().any(|r| r.name == p.name && r.version == p.version) {
                continue;
            }
            let pack = PackName::parse(&p.name)?;
            // A version removed since it was enabled cannot be: removal checks the groups.
            let v = get_version(meta, org, &pack, &p.version_tag).await?;
            let Some(sha) = &v.sha256 else { continue };
            out.push(RequiredPolicy {
                name: p.name.clone(),
                version: v.version,
                version_tag: v.tag.clone(),
                display_name: v.display_name.clone(),
                pack_location: super::super::artifacts::download_url(app, sha).await?,
                config: p.config.clone(),
                environments: p.environments.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(p: &str, s: &str) -> StackMember {
        StackMember { name: s.into(), routing_project: p.into() }
    }

    #[test]
    fn the_default_group_applies_to_every_stack_not_removed() {
        let mut g = Group::empty_default();
        assert!(g.applies_to("p", "dev"));
        apply(&mut g, &Change { remove_stack: Some(member("p", "dev")), ..Change::default() });
        let rule: Change =
            serde_json::from_value(serde_json::json!({"stackMatchRule": {"op": "and"}}))
                .unwrap_or_default();
        assert!(rule.check().is_err(), "a match rule is refused, not ignored");
        assert!(!g.applies_to("p", "dev") && g.applies_to("p", "prod"));
        apply(&mut g, &Change { add_stack: Some(member("p", "dev")), ..Change::default() });
        assert!(g.applies_to("p", "dev"));
    }

    #[test]
    fn enabling_a_pack_replaces_its_version_and_disabling_removes_it() {
        let mut g = Group { is_default: false, name: "g".into(), ..Group::empty_default() };
        let pack = |tag: &str| EnabledPack {
            name: "p".into(),
            display_name: "p".into(),
            version: tag.parse().unwrap_or(0),
            version_tag: tag.into(),
            config: None,
            environments: None,
        };
        apply(&mut g, &Change { add_policy_pack: Some(pack("1")), ..Change::default() });
        apply(&mut g, &Change { add_policy_pack: Some(pack("2")), ..Change::default() });
        assert_eq!(g.packs, vec![pack("2")]);
        apply(&mut g, &Change { remove_policy_pack: Some(pack("1")), ..Change::default() });
        assert_eq!(g.packs.len(), 1, "disabling another version leaves the enabled one");
        apply(&mut g, &Change { remove_policy_pack: Some(pack("")), ..Change::default() });
        assert!(g.packs.is_empty());
        assert!(!g.applies_to("p", "s"));
    }
}
