//! Policy packs (issue 20, Pulumi Cloud's `organizations` policy API, as `pulumi policy`
//! calls it): an organization publishes versions of a pack, enables them in policy groups,
//! and every update of a stack in a group downloads and runs them.
//!
//! * The pack item (`ORG#<org>` / `PPACK#<name>`) holds its display name and the last version
//!   number handed out.
//! * Each version (`PPVER#<name>#<tag>`) is `pending` from `publish` until `complete` finds
//!   its archive uploaded; completing stores the archive as an artifact (`service::artifacts`)
//!   and references it, in one transaction with the version turning `complete`.
//! * A version tag, once complete, is never published again; a pending one may be (its upload
//!   was abandoned).

pub mod groups;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::artifacts::{self, Expect};
use super::item_keys;
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, TransactOp, Value};
use crate::service::access::query_all;
use crate::service::optimistic::{retry_on_conflict, written, Attempt};

const PACK_PREFIX: &str = "PPACK#";
const VERSION_PREFIX: &str = "PPVER#";
const PENDING: &str = "pending";
const COMPLETE: &str = "complete";

/// A policy pack's name, validated (the CLI's rule: letters, digits, `-`, `_`, `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackName(String);

impl PackName {
    pub fn parse(name: &str) -> Result<PackName> {
        if name.is_empty()
            || name.len() > 100
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::BadRequest(format!(
                "invalid policy pack name {:?}: use at most 100 letters, digits, hyphens, underscores or periods",
                name.chars().take(100).collect::<String>()
            )));
        }
        Ok(PackName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A version tag (semantic versions and the like; no `#` or `/`).
pub fn parse_tag(tag: &str) -> Result<String> {
    if tag.is_empty()
        || tag.len() > 128
        || !tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
    {
        return Err(Error::BadRequest(format!(
            "invalid policy pack version {:?}: use at most 128 letters, digits, '.', '-', '_' or '+'",
            tag.chars().take(128).collect::<String>()
        )));
    }
    Ok(tag.to_string())
}

fn pack_sk(name: &PackName) -> String {
    format!("{PACK_PREFIX}{}", name.0)
}

fn version_sk(name: &PackName, tag: &str) -> String {
    format!("{VERSION_PREFIX}{}#{tag}", name.0)
}

/// One policy of a pack, as the CLI describes it when publishing (`apitype.Policy`); kept as
/// sent apart from the fields read here.
pub type Policy = Json;

/// What `pulumi policy publish` sends (`CreatePolicyPackRequest`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CreatePolicyPack {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub version_tag: String,
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
}

/// A version of a pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub org: String,
    pub name: String,
    pub display_name: String,
    pub version: i64,
    pub tag: String,
    pub complete: bool,
    pub policies: Vec<Policy>,
    /// The upload's scratch key while pending.
    pub upload: Option<String>,
    /// The stored archive, once complete.
    pub sha256: Option<String>,
    pub size: i64,
    pub created: i64,
}

impl Version {
    fn item(&self) -> Result<Item> {
        let policies = serde_json::to_string(&self.policies)
            .map_err(|e| Error::internal(format!("policies: {e}")))?;
        let mut item = Item::new(
            item_keys::org_pk(&self.org),
            version_sk(&PackName(self.name.clone()), &self.tag),
        )
        .with("name", Value::S(self.name.clone()))
        .with("display_name", Value::S(self.display_name.clone()))
        .with("version", Value::N(self.version))
        .with("tag", Value::S(self.tag.clone()))
        .with("state", Value::S(if self.complete { COMPLETE } else { PENDING }.into()))
        .with("policies", Value::S(policies))
        .with("size", Value::N(self.size))
        .with("created", Value::N(self.created));
        if let Some(upload) = &self.upload {
            item.set("upload", Value::S(upload.clone()));
        }
        if let Some(sha) = &self.sha256 {
            item.set("sha256", Value::S(sha.clone()));
        }
        Ok(item)
    }

    fn from_item(org: &str, item: &Item) -> Result<Version> {
        let corrupt =
            |what: &str| Error::internal(format!("policy pack version item lacks {what}"));
        let policies = item.s("policies").unwrap_or("[]");
        Ok(Version {
            org: org.to_string(),
            name: item.s("name").ok_or_else(|| corrupt("name"))?.to_string(),
            display_name: item.s("display_name").unwrap_or_default().to_string(),
            version: item.n("version").ok_or_else(|| corrupt("version"))?,
            tag: item.s("tag").ok_or_else(|| corrupt("tag"))?.to_string(),
            complete: item.s("state") == Some(COMPLETE),
            policies: serde_json::from_str(policies).map_err(|_| corrupt("policies"))?,
            upload: item.s("upload").map(str::to_string),
            sha256: item.s("sha256").map(str::to_string),
            size: item.n("size").unwrap_or(0),
            created: item.n("created").unwrap_or(0),
        })
    }

    /// Each policy's config schema by policy name (`GetPolicyPackConfigSchemaResponse`).
    pub fn config_schema(&self) -> serde_json::Map<String, Json> {
        self.policies
            .iter()
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?;
                let schema = p.get("configSchema").filter(|s| !s.is_null())?;
                Some((name.to_string(), schema.clone()))
            })
            .collect()
    }
}

fn not_found(org: &str, name: &str, tag: Option<&str>) -> Error {
    match tag {
        Some(tag) => Error::NotFound(format!("policy pack {org}/{name} has no version {tag}")),
        None => Error::NotFound(format!("policy pack {org}/{name} not found")),
    }
}

/// What `publish` hands back (`CreatePolicyPackResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub version: i64,
    pub upload_url: String,
}

/// Starts publishing a version: records it pending with the next version number and hands out
/// an upload URL. 409 when the tag is already published or the quota is full.
pub async fn publish(app: &App, org: &str, req: CreatePolicyPack) -> Result<Published> {
    let name = PackName::parse(&req.name)?;
    if !req.policies.iter().all(|p| p.get("name").and_then(Json::as_str).is_some()) {
        return Err(Error::BadRequest("every policy must have a name".into()));
    }
    artifacts::check_quota(app, org, 0).await?;
    let meta = app.ports.meta.as_ref();
    let upload = artifacts::begin(app, org).await?;
    let display = if req.display_name.is_empty() { req.name.clone() } else { req.display_name };
    let outcome = retry_on_conflict!(8, async {
        let pack = meta.get(&item_keys::org_pk(org), &pack_sk(&name)).await?;
        let last = pack.as_ref().and_then(|p| p.n("last")).unwrap_or(0);
        let number = last + 1;
        let tag = if req.version_tag.is_empty() {
            number.to_string()
        } else {
            parse_tag(&req.version_tag)?
        };
        let existing = meta.get(&item_keys::org_pk(org), &version_sk(&name, &tag)).await?;
        let existing = existing.map(|i| Version::from_item(org, &i)).transpose()?;
        if existing.as_ref().is_some_and(|v| v.complete) {
            return Err(Error::Conflict(format!(
                "policy pack {org}/{} version {tag} is already published; a version cannot be published twice",
                name.0
            )));
        }
        // A pending version published again keeps its number; its old upload is abandoned.
        let number = existing.as_ref().map_or(number, |v| v.version);
        let version = Version {
            org: org.to_string(),
            name: name.0.clone(),
            display_name: display.clone(),
            version: number,
            tag,
            complete: false,
            policies: req.policies.clone(),
            upload: Some(upload.key.clone()),
            sha256: None,
            size: 0,
            created: app.clock.now(),
        };
        let pack_item = Item::new(item_keys::org_pk(org), pack_sk(&name))
            .with("display_name", Value::S(display.clone()))
            .with("last", Value::N(last.max(number)))
            .with(
                "created",
                Value::N(pack.as_ref().and_then(|p| p.n("created")).unwrap_or(version.created)),
            );
        let pack_cond = match &pack {
            None => Condition::NotExists,
            Some(_) => Condition::Equals("last".into(), Value::N(last)),
        };
        let version_cond = match &existing {
            None => Condition::NotExists,
            Some(_) => Condition::Equals("state".into(), Value::S(PENDING.into())),
        };
        let ops = vec![
            TransactOp::Put(pack_item, Some(pack_cond)),
            TransactOp::Put(version.item()?, Some(version_cond)),
        ];
        written(meta.transact(ops).await, number)
    })?;
    let version = outcome.ok_or_else(|| {
        Error::Conflict("the policy pack was published concurrently, try again".into())
    })?;
    Ok(Published { version, upload_url: upload.url })
}

/// Reads a version, or 404.
pub async fn get_version(
    meta: &dyn MetadataStore,
    org: &str,
    name: &PackName,
    tag: &str,
) -> Result<Version> {
    let item = meta.get(&item_keys::org_pk(org), &version_sk(name, tag)).await?;
    match item {
        Some(item) => Version::from_item(org, &item),
        None => Err(not_found(org, &name.0, Some(tag))),
    }
}

/// Finishes publishing: stores the uploaded archive by content and references it, the version
/// turning complete in the same transaction. Completing a complete version again is a no-op.
pub async fn complete(app: &App, org: &str, name: &PackName, tag: &str) -> Result<Version> {
    let meta = app.ports.meta.as_ref();
    let version = get_version(meta, org, name, tag).await?;
    if version.complete {
        return Ok(version);
    }
    let Some(upload) = version.upload.clone() else {
        return Err(Error::internal("pending policy pack version without an upload"));
    };
    let stored = artifacts::store(app, &upload, Expect::default()).await?;
    let outcome = retry_on_conflict!(12, async {
        let current = get_version(meta, org, name, tag).await?;
        if current.complete {
            return Ok(Attempt::Done((current, true)));
        }
        if current.upload.as_deref() != Some(upload.as_str()) {
            return Err(Error::Conflict(
                "the version was published again meanwhile; complete that publish".into(),
            ));
        }
        let Some(reference) = artifacts::reference_ops(app, org, &[&stored]).await? else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return Ok(Attempt::Raced);
        };
        let done = Version {
            complete: true,
            upload: None,
            sha256: Some(stored.sha256.clone()),
            size: stored.size,
            ..current
        };
        let mut ops = reference.ops;
        ops.push(TransactOp::Put(
            done.item()?,
            Some(Condition::Equals("upload".into(), Value::S(upload.clone()))),
        ));
        written(meta.transact(ops).await, (done, reference.protected))
    })?;
    let (done, protected) = outcome.ok_or_else(|| {
        Error::Unavailable("the artifact store is busy with this archive, try again".into())
    })?;
    artifacts::ensure_stored(app, &[&stored], &[&upload], protected).await?;
    Ok(done)
}

/// Every version of `name` (pending ones too), by version number.
pub async fn versions(
    meta: &dyn MetadataStore,
    org: &str,
    name: &PackName,
) -> Result<Vec<Version>> {
    let prefix = format!("{VERSION_PREFIX}{}#", name.0);
    let items = query_all(meta, Query::prefix(item_keys::org_pk(org), prefix, 500)).await?;
    let mut out = items.iter().map(|i| Version::from_item(org, i)).collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|v| v.version);
    Ok(out)
}

/// A pack with its published versions (`PolicyPackWithVersions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    pub name: String,
    pub display_name: String,
    /// Complete versions, oldest first.
    pub versions: Vec<Version>,
}

/// The organization's packs with their complete versions (packs with none are left out).
pub async fn list(meta: &dyn MetadataStore, org: &str) -> Result<Vec<Pack>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let mut q = Query::prefix(item_keys::org_pk(org), PACK_PREFIX, 500);
        q.after = after.take();
        let page = meta.query(q).await?;
        for item in &page.items {
            let Some(name) = item.sk.strip_prefix(PACK_PREFIX) else { continue };
            let name = PackName(name.to_string());
            let versions: Vec<Version> =
                versions(meta, org, &name).await?.into_iter().filter(|v| v.complete).collect();
            if versions.is_empty() {
                continue;
            }
            out.push(Pack {
                display_name: versions.last().map(|v| v.display_name.clone()).unwrap_or_default(),
                name: name.0,
                versions,
            });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(out)
}

/// The newest complete version of `name` (what `latest` means), or 404.
pub async fn latest(meta: &dyn MetadataStore, org: &str, name: &PackName) -> Result<Version> {
    versions(meta, org, name)
        .await?
        .into_iter()
        .filter(|v| v.complete)
        .max_by_key(|v| v.version)
        .ok_or_else(|| not_found(org, &name.0, None))
}

/// Removes a version (`Some(tag)`) or every version of a pack, giving back their artifact
/// references. 400 while a policy group enables it: disable it there first.
pub async fn remove(app: &App, org: &str, name: &PackName, tag: Option<&str>) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let targets: Vec<Version> = match tag {
        Some(tag) => vec![get_version(meta, org, name, tag).await?],
        None => {
            let all = versions(meta, org, name).await?;
            if all.is_empty() && meta.get(&item_keys::org_pk(org), &pack_sk(name)).await?.is_none()
            {
                return Err(not_found(org, &name.0, None));
            }
            all
        }
    };
    for g in groups::list(meta, org).await? {
        if let Some(p) = g
            .packs
            .iter()
            .find(|p| p.name == name.0 && targets.iter().any(|v| v.version == p.version))
        {
            return Err(Error::BadRequest(format!(
                "policy pack {org}/{} version {} is enabled in policy group {}; disable it there first",
                name.0, p.version_tag, g.name
            )));
        }
    }
    for v in &targets {
        remove_version(app, org, v).await?;
    }
    if tag.is_none() {
        meta.delete(&item_keys::org_pk(org), &pack_sk(name), None).await?;
    }
    Ok(())
}

async fn remove_version(app: &App, org: &str, v: &Version) -> Result<()> {
    let key = version_sk(&PackName(v.name.clone()), &v.tag);
    let references: Vec<(&str, i64)> =
        v.sha256.as_deref().filter(|_| v.complete).map(|sha| (sha, v.size)).into_iter().collect();
    let at = (item_keys::org_pk(org), key);
    artifacts::remove_owner(
        app,
        org,
        (&at.0, &at.1),
        &references,
        v.upload.as_deref().as_slice(),
        "policy pack",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_are_validated() {
        assert!(PackName::parse("aws-guard_1.x").is_ok());
        for bad in ["", "a/b", "a#b", "a b", &"x".repeat(101)] {
            assert!(PackName::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_tag("1.2.3-beta+4").is_ok());
        for bad in ["", "1/2", "1#2", "1 2"] {
            assert!(parse_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_schemas_are_keyed_by_policy() {
        let v = Version {
            org: "o".into(),
            name: "p".into(),
            display_name: "p".into(),
            version: 1,
            tag: "1".into(),
            complete: true,
            policies: vec![
                serde_json::json!({"name": "a", "configSchema": {"type": "object"}}),
                serde_json::json!({"name": "b"}),
            ],
            upload: None,
            sha256: None,
            size: 0,
            created: 0,
        };
        assert_eq!(Json::Object(v.config_schema()), serde_json::json!({"a": {"type": "object"}}));
    }
    proptest::proptest! {
        /// Any name or tag is accepted only when it cannot split a key (`#`, `/`) or a path,
        /// and any JSON body parses into a publish request or is refused, never panics.
        #[test]
        fn names_tags_and_bodies_never_escape_their_keys(
            name in "[ -~]{0,120}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let accepted = [PackName::parse(&name).ok().map(|n| n.0), parse_tag(&name).ok()];
            for ok in accepted.into_iter().flatten() {
                proptest::prop_assert!(!ok.is_empty() && ok.len() <= 128);
                proptest::prop_assert!(!ok.contains(['#', '/', ' ', '?', '%']));
            }
            let _ = serde_json::from_slice::<CreatePolicyPack>(&body);
            if let Ok(c) = serde_json::from_slice::<groups::Change>(&body) {
                let _ = c.check();
            }
        }
    }
}
