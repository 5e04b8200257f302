//! Private registry packages (issue 20, `/api/registry/packages`, as `pulumi package publish`,
//! `pulumi package remove` and the CLI's package resolution call them): an organization
//! publishes a package's schema with its readme (and installation notes); members find it.
//!
//! * Each version (`ORG#<publisher>` / `PKGVER#<name>#<version>`) is `pending` from the start of
//!   a publish — three upload URLs: schema, index (the readme), installation configuration —
//!   until `complete` finds the schema uploaded and naming this package and version. Each
//!   upload is an artifact (`service::artifacts`), stored once by content; the version refers
//!   to all of them in the transaction that completes it.
//! * Only the `private` source is served.

use serde::Serialize;

use super::artifacts::{self, Expect, Stored};
use super::item_keys;
use super::templates::{check_source, parse_name, parse_version, SOURCE};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, TransactOp, Value};
use crate::service::access::query_all;
use crate::service::optimistic::{retry_on_conflict, written, Attempt};

const VERSION_PREFIX: &str = "PKGVER#";
const PENDING: &str = "pending";
const COMPLETE: &str = "complete";
/// The uploads of one version, in the order of their item attributes.
const PARTS: [&str; 3] = ["schema", "index", "install"];

/// A package version's name, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRef {
    pub org: String,
    pub name: String,
    pub version: semver::Version,
}

impl PackageRef {
    /// Validates the parts; the source must be `private`.
    pub fn parse(source: &str, org: &str, name: &str, version: &str) -> Result<PackageRef> {
        check_source(source)?;
        Ok(PackageRef {
            org: org.into(),
            name: parse_name(name)?,
            version: parse_version(version)?,
        })
    }

    fn sk(&self) -> String {
        format!("{VERSION_PREFIX}{}#{}", self.name, self.version)
    }
}

/// One stored part of a version: its archive's SHA-256 and size.
type Part = Option<(String, i64)>;

/// A stored package version.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub at: PackageRef,
    pub complete: bool,
    /// Scratch keys of the schema, readme and installation uploads while pending.
    pub uploads: [Option<String>; 3],
    /// The stored schema, readme and installation notes, once complete.
    pub parts: [Part; 3],
    pub title: Option<String>,
    pub description: Option<String>,
    pub repository: Option<String>,
    pub plugin_download_url: Option<String>,
    pub created: i64,
}

impl Version {
    fn item(&self) -> Item {
        let mut item = Item::new(item_keys::org_pk(&self.at.org), self.at.sk())
            .with("name", Value::S(self.at.name.clone()))
            .with("version", Value::S(self.at.version.to_string()))
            .with("state", Value::S(if self.complete { COMPLETE } else { PENDING }.into()))
            .with("created", Value::N(self.created));
        for (i, part) in PARTS.iter().enumerate() {
            if let Some(upload) = &self.uploads[i] {
                item.set(&format!("upload_{part}"), Value::S(upload.clone()));
            }
            if let Some((sha, size)) = &self.parts[i] {
                item.set(&format!("sha_{part}"), Value::S(sha.clone()));
                item.set(&format!("size_{part}"), Value::N(*size));
            }
        }
        for (name, value) in [
            ("title", &self.title),
            ("description", &self.description),
            ("repository", &self.repository),
            ("plugin_download_url", &self.plugin_download_url),
        ] {
            if let Some(v) = value {
                item.set(name, Value::S(v.clone()));
            }
        }
        item
    }

    fn from_item(org: &str, item: &Item) -> Result<Version> {
        let corrupt = |what: &str| Error::internal(format!("package version item lacks {what}"));
        let version = item.s("version").ok_or_else(|| corrupt("version"))?;
        let text = |name: &str| item.s(name).map(str::to_string);
        Ok(Version {
            at: PackageRef {
                org: org.to_string(),
                name: item.s("name").ok_or_else(|| corrupt("name"))?.to_string(),
                version: semver::Version::parse(version).map_err(|_| corrupt("a valid version"))?,
            },
            complete: item.s("state") == Some(COMPLETE),
            uploads: PARTS.map(|p| text(&format!("upload_{p}"))),
            parts: PARTS.map(|p| {
                let sha = text(&format!("sha_{p}"))?;
                Some((sha, item.n(&format!("size_{p}")).unwrap_or(0)))
            }),
            title: text("title"),
            description: text("description"),
            repository: text("repository"),
            plugin_download_url: text("plugin_download_url"),
            created: item.n("created").unwrap_or(0),
        })
    }

    fn references(&self) -> Vec<(&str, i64)> {
        if !self.complete {
            return Vec::new();
        }
        self.parts.iter().flatten().map(|(sha, size)| (sha.as_str(), *size)).collect()
    }
}

fn not_found(at: &PackageRef) -> Error {
    Error::NotFound(format!("package {SOURCE}/{}/{}@{} not found", at.org, at.name, at.version))
}

/// The operation id of a publish: its schema upload's last key segment.
fn operation_id(uploads: &[Option<String>; 3]) -> &str {
    uploads[0].as_deref().and_then(|k| k.rsplit('/').next()).unwrap_or_default()
}

/// What a publish starts with (`StartPackagePublishResponse`): the operation and where the
/// schema, readme and installation notes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub operation_id: String,
    pub urls: [String; 3],
}

/// Starts publishing a version: three upload URLs, the version pending. 409 when it is
/// already published or the quota is full.
pub async fn start(app: &App, at: &PackageRef) -> Result<Started> {
    artifacts::check_quota(app, &at.org, 0).await?;
    let mut uploads = Vec::with_capacity(3);
    for _ in PARTS {
        uploads.push(artifacts::begin(app, &at.org).await?);
    }
    let version = Version {
        at: at.clone(),
        complete: false,
        uploads: [0, 1, 2].map(|i| Some(uploads[i].key.clone())),
        parts: [None, None, None],
        title: None,
        description: None,
        repository: None,
        plugin_download_url: None,
        created: app.clock.now(),
    };
    let cond = Condition::NotExists.or(Condition::Equals("state".into(), Value::S(PENDING.into())));
    match app.ports.meta.put(version.item(), Some(cond)).await {
        Ok(()) => {}
        Err(crate::ports::MetaError::ConditionFailed) => {
            return Err(Error::Conflict(format!(
                "package {}/{}@{} is already published; a version cannot be published twice",
                at.org, at.name, at.version
            )))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Started {
        operation_id: operation_id(&version.uploads).to_string(),
        urls: [0, 1, 2].map(|i| uploads[i].url.clone()),
    })
}

/// Reads a version, or 404.
pub async fn get_version(meta: &dyn MetadataStore, at: &PackageRef) -> Result<Version> {
    match meta.get(&item_keys::org_pk(&at.org), &at.sk()).await? {
        Some(item) => Version::from_item(&at.org, &item),
        None => Err(not_found(at)),
    }
}

/// What the schema says of the package, checked against the version being published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SchemaFacts {
    title: Option<String>,
    description: Option<String>,
    repository: Option<String>,
    plugin_download_url: Option<String>,
}

fn read_schema(at: &PackageRef, bytes: &[u8]) -> Result<SchemaFacts> {
    let bad = |why: String| Error::BadRequest(format!("the package schema {why}"));
    // serde_json refuses nesting past 128 levels, so no schema can exhaust the stack.
    let schema: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let text = |name: &str| schema.get(name).and_then(|v| v.as_str()).map(str::to_string);
    if text("name").as_deref() != Some(at.name.as_str()) {
        return Err(bad(format!("does not name the package {:?}", at.name)));
    }
    if let Some(v) = text("version") {
        if semver::Version::parse(&v).ok().as_ref() != Some(&at.version) {
            return Err(bad(format!("is version {v:?}, not {}", at.version)));
        }
    }
    Ok(SchemaFacts {
        title: text("displayName"),
        description: text("description"),
        repository: text("repository"),
        plugin_download_url: text("pluginDownloadURL"),
    })
}

/// Finishes publishing: the schema (required: JSON naming this package and version), the
/// readme and the installation notes (when uploaded) are stored by content and referenced,
/// the version complete in the same transaction. Completing a complete version is a no-op.
pub async fn complete(app: &App, at: &PackageRef, operation: &str) -> Result<Version> {
    let meta = app.ports.meta.as_ref();
    let version = get_version(meta, at).await?;
    if version.complete {
        return Ok(version);
    }
    if operation_id(&version.uploads) != operation {
        return Err(Error::BadRequest(format!(
            "operation {operation:?} is not this version's publish; start it again"
        )));
    }
    let uploads: Vec<String> = version.uploads.iter().flatten().cloned().collect();
    let mut stored: [Option<Stored>; 3] = [None, None, None];
    for (i, key) in version.uploads.iter().enumerate() {
        let Some(key) = key else { continue };
        match artifacts::read_upload(app, key, Expect::default()).await {
            Ok(s) => stored[i] = Some(s),
            // Only the schema must be there; the CLI uploads the rest when it has them.
            Err(Error::BadRequest(_)) if i > 0 => {}
            Err(e) => return Err(e),
        }
    }
    let Some(schema) = &stored[0] else {
        return Err(Error::internal("a stored schema went missing"));
    };
    let facts = read_schema(at, &schema.bytes)?;
    let all: Vec<&Stored> = stored.iter().flatten().collect();
    for read in &all {
        artifacts::keep(app, read).await?;
    }
    let outcome = retry_on_conflict!(12, async {
        let current = get_version(meta, at).await?;
        if current.complete {
            return Ok(Attempt::Done((current, true)));
        }
        if current.uploads != version.uploads {
            return Err(Error::Conflict(
                "the version was published again meanwhile; complete that publish".into(),
            ));
        }
        let Some(reference) = artifacts::reference_ops(app, &at.org, &all).await? else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return Ok(Attempt::Raced);
        };
        let done = Version {
            complete: true,
            uploads: [None, None, None],
            parts: [0, 1, 2].map(|i| stored[i].as_ref().map(|s| (s.sha256.clone(), s.size))),
            title: facts.title.clone(),
            description: facts.description.clone(),
            repository: facts.repository.clone(),
            plugin_download_url: facts.plugin_download_url.clone(),
            ..current
        };
        let cond =
            Condition::Equals("upload_schema".into(), Value::S(operation_key(&version.uploads)));
        let mut ops = reference.ops;
        ops.push(TransactOp::Put(done.item(), Some(cond)));
        written(meta.transact(ops).await, (done, reference.protected))
    })?;
    let (done, protected) = outcome.ok_or_else(|| {
        Error::Unavailable("the artifact store is busy with this package, try again".into())
    })?;
    let keys: Vec<&str> = uploads.iter().map(String::as_str).collect();
    artifacts::ensure_stored(app, &all, &keys, protected).await?;
    Ok(done)
}

fn operation_key(uploads: &[Option<String>; 3]) -> String {
    uploads[0].clone().unwrap_or_default()
}

/// A package as the registry describes it (`PackageMetadata`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PackageMetadata {
    pub name: String,
    pub publisher: String,
    pub source: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    pub is_featured: bool,
    pub package_types: Vec<String>,
    pub package_status: String,
    /// A short-lived URL of the readme (empty when none was uploaded).
    #[serde(rename = "readmeURL")]
    pub readme_url: String,
    /// A short-lived URL of the schema.
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
    #[serde(rename = "pluginDownloadURL", skip_serializing_if = "Option::is_none")]
    pub plugin_download_url: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub visibility: String,
}

async fn metadata(app: &App, v: &Version) -> Result<PackageMetadata> {
    let url = |i: usize| {
        let sha = v.parts[i].as_ref().map(|(sha, _)| sha.clone());
        async move {
            match sha {
                Some(sha) => artifacts::download_url(app, &sha).await,
                None => Ok(String::new()),
            }
        }
    };
    Ok(PackageMetadata {
        name: v.at.name.clone(),
        publisher: v.at.org.clone(),
        source: SOURCE.into(),
        version: v.at.version.to_string(),
        title: v.title.clone(),
        description: v.description.clone(),
        repo_url: v.repository.clone(),
        is_featured: false,
        package_types: vec!["native".into()],
        package_status: "ga".into(),
        readme_url: url(1).await?,
        schema_url: url(0).await?,
        plugin_download_url: v.plugin_download_url.clone(),
        created_at: super::environments::rfc3339(v.created),
        visibility: "private".into(),
    })
}

async fn versions(meta: &dyn MetadataStore, org: &str, name: Option<&str>) -> Result<Vec<Version>> {
    let prefix = match name {
        Some(n) => format!("{VERSION_PREFIX}{n}#"),
        None => VERSION_PREFIX.to_string(),
    };
    let items = query_all(meta, Query::prefix(item_keys::org_pk(org), prefix, 500)).await?;
    let mut out = Vec::new();
    for item in &items {
        let v = Version::from_item(org, item)?;
        if v.complete {
            out.push(v);
        }
    }
    out.sort_by(|a, b| (&a.at.name, &a.at.version).cmp(&(&b.at.name, &b.at.version)));
    Ok(out)
}

/// The newest version of each package of `orgs` (only `name`'s, when given).
pub async fn list(app: &App, orgs: &[String], name: Option<&str>) -> Result<Vec<PackageMetadata>> {
    let meta = app.ports.meta.as_ref();
    let mut out = Vec::new();
    for org in orgs {
        let all = versions(meta, org, name).await?;
        for (i, v) in all.iter().enumerate() {
            if all.get(i + 1).is_some_and(|next| next.at.name == v.at.name) {
                continue;
            }
            out.push(metadata(app, v).await?);
        }
    }
    Ok(out)
}

/// One version (`latest`: the newest), with its schema and readme URLs.
pub async fn get(app: &App, org: &str, name: &str, version: &str) -> Result<PackageMetadata> {
    let meta = app.ports.meta.as_ref();
    let name = parse_name(name)?;
    let v = if version == "latest" {
        versions(meta, org, Some(&name)).await?.pop().ok_or_else(|| {
            Error::NotFound(format!("package {SOURCE}/{org}/{name} has no published version"))
        })?
    } else {
        let at = PackageRef { org: org.into(), name, version: parse_version(version)? };
        let v = get_version(meta, &at).await?;
        if !v.complete {
            return Err(not_found(&at));
        }
        v
    };
    metadata(app, &v).await
}

/// Removes a version, giving back its archives' references (`pulumi package remove`).
pub async fn remove(app: &App, at: &PackageRef) -> Result<()> {
    let v = get_version(app.ports.meta.as_ref(), at).await?;
    let key = (item_keys::org_pk(&at.org), at.sk());
    let uploads: Vec<&str> = v.uploads.iter().flatten().map(String::as_str).collect();
    artifacts::remove_owner(app, &at.org, (&key.0, &key.1), &v.references(), &uploads, "package")
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> PackageRef {
        PackageRef::parse("private", "acme", "stackhouse-test", "1.0.0").unwrap()
    }

    #[test]
    fn the_schema_must_name_this_package_and_version() {
        let ok = br#"{"name": "stackhouse-test", "version": "1.0.0", "description": "Items"}"#;
        assert_eq!(read_schema(&at(), ok).unwrap().description.as_deref(), Some("Items"));
        assert!(
            read_schema(&at(), br#"{"name": "stackhouse-test"}"#).is_ok(),
            "no version: the path's"
        );
        for bad in [
            &br#"{"name": "other", "version": "1.0.0"}"#[..],
            br#"{"name": "stackhouse-test", "version": "2.0.0"}"#,
            b"not json",
            b"[]",
        ] {
            assert_eq!(read_schema(&at(), bad).unwrap_err().status().as_u16(), 400);
        }
    }

    #[test]
    fn items_round_trip_with_their_parts() {
        let v = Version {
            at: at(),
            complete: true,
            uploads: [None, None, None],
            parts: [Some(("a".into(), 3)), None, Some(("b".into(), 4))],
            title: Some("T".into()),
            description: None,
            repository: None,
            plugin_download_url: None,
            created: 7,
        };
        assert_eq!(Version::from_item("acme", &v.item()).unwrap(), v);
        assert_eq!(v.references(), vec![("a", 3), ("b", 4)]);
    }
}
