//! Private registry templates (issue 20, `/api/registry/templates`, as `pulumi template
//! publish`, `pulumi template ls` and `pulumi new <publisher>/<name>@<version>` call them): an
//! organization publishes versions of a project template; members list them and start projects
//! from them.
//!
//! * Each version (`ORG#<publisher>` / `TPLVER#<name>#<version>`) is `pending` from the start
//!   of a publish (its operation id names its upload) until `complete` finds the archive
//!   uploaded and well formed: a tar.gz with `Pulumi.yaml` at its root, whose `runtime` and
//!   `description` the listing shows. The archive is an artifact (`service::artifacts`), stored
//!   once by content and referenced in the transaction that completes the version; so is its
//!   root `README.md`, when it has one, which the registry serves as the template's readme.
//! * Only the `private` source is served: templates of the organizations the caller is in.

use std::io::Read;

use serde::Serialize;

use super::artifacts::{self, Expect, Stored};
use super::item_keys;
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, TransactOp, Value};
use crate::service::access::query_all;
use crate::service::optimistic::{retry_on_conflict, written, Attempt};

/// The one source served: the organizations' own templates.
pub const SOURCE: &str = "private";
const VERSION_PREFIX: &str = "TPLVER#";
const PENDING: &str = "pending";
const COMPLETE: &str = "complete";
/// Largest `Pulumi.yaml` or `README.md` read from an archive.
const MAX_PROJECT_FILE: u64 = 1 << 20;

/// A template version's name, validated: `[A-Za-z0-9_.-]{1,100}` (the CLI's rule) and a strict
/// semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub org: String,
    pub name: String,
    pub version: semver::Version,
}

impl TemplateRef {
    /// Validates the parts; the source must be `private`.
    pub fn parse(source: &str, org: &str, name: &str, version: &str) -> Result<TemplateRef> {
        check_source(source)?;
        Ok(TemplateRef {
            org: org.into(),
            name: parse_name(name)?,
            version: parse_version(version)?,
        })
    }

    fn sk(&self) -> String {
        format!("{VERSION_PREFIX}{}#{}", self.name, self.version)
    }
}

/// 404 for a source this server does not serve (as for a template that does not exist).
pub fn check_source(source: &str) -> Result<()> {
    if source != SOURCE {
        return Err(Error::NotFound(format!(
            "only the {SOURCE:?} template registry is served here, not {:?}",
            source.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

/// A template name.
pub fn parse_name(name: &str) -> Result<String> {
    if name.is_empty()
        || name.len() > 100
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::BadRequest(format!(
            "invalid template name {:?}: use at most 100 letters, digits, hyphens, underscores or periods",
            name.chars().take(100).collect::<String>()
        )));
    }
    Ok(name.to_string())
}

/// A strict semantic version (the CLI sends one).
pub fn parse_version(version: &str) -> Result<semver::Version> {
    semver::Version::parse(version).map_err(|_| {
        Error::BadRequest(format!(
            "invalid template version {:?}: a semantic version such as 1.0.0",
            version.chars().take(64).collect::<String>()
        ))
    })
}

/// A stored template version.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub at: TemplateRef,
    pub complete: bool,
    /// The upload's scratch key while pending (its last segment is the operation id).
    pub upload: Option<String>,
    pub sha256: Option<String>,
    pub size: i64,
    /// From the archive's `Pulumi.yaml`.
    pub language: String,
    pub description: Option<String>,
    /// The stored `README.md` of the archive (SHA-256, size), when it has one.
    pub readme: Option<(String, i64)>,
    pub updated: i64,
}

impl Version {
    /// The artifacts a complete version references (SHA-256, size).
    fn references(&self) -> Vec<(&str, i64)> {
        if !self.complete {
            return Vec::new();
        }
        let archive = self.sha256.as_deref().map(|sha| (sha, self.size));
        let readme = self.readme.as_ref().map(|(sha, size)| (sha.as_str(), *size));
        archive.into_iter().chain(readme).collect()
    }

    fn item(&self) -> Item {
        let mut item = Item::new(item_keys::org_pk(&self.at.org), self.at.sk())
            .with("name", Value::S(self.at.name.clone()))
            .with("version", Value::S(self.at.version.to_string()))
            .with("state", Value::S(if self.complete { COMPLETE } else { PENDING }.into()))
            .with("size", Value::N(self.size))
            .with("language", Value::S(self.language.clone()))
            .with("updated", Value::N(self.updated));
        for (name, value) in
            [("upload", &self.upload), ("sha256", &self.sha256), ("description", &self.description)]
        {
            if let Some(v) = value {
                item.set(name, Value::S(v.clone()));
            }
        }
        if let Some((sha, size)) = &self.readme {
            item.set("readme_sha", Value::S(sha.clone()));
            item.set("readme_size", Value::N(*size));
        }
        item
    }

    fn from_item(org: &str, item: &Item) -> Result<Version> {
        let corrupt = |what: &str| Error::internal(format!("template version item lacks {what}"));
        let version = item.s("version").ok_or_else(|| corrupt("version"))?;
        Ok(Version {
            at: TemplateRef {
                org: org.to_string(),
                name: item.s("name").ok_or_else(|| corrupt("name"))?.to_string(),
                version: semver::Version::parse(version).map_err(|_| corrupt("a valid version"))?,
            },
            complete: item.s("state") == Some(COMPLETE),
            upload: item.s("upload").map(str::to_string),
            sha256: item.s("sha256").map(str::to_string),
            size: item.n("size").unwrap_or(0),
            language: item.s("language").unwrap_or_default().to_string(),
            description: item.s("description").map(str::to_string),
            readme: item
                .s("readme_sha")
                .map(|sha| (sha.to_string(), item.n("readme_size").unwrap_or(0))),
            updated: item.n("updated").unwrap_or(0),
        })
    }
}

/// The operation id of an upload: its scratch key's last segment.
fn operation_id(upload: &str) -> &str {
    upload.rsplit('/').next().unwrap_or(upload)
}

fn not_found(at: &TemplateRef) -> Error {
    Error::NotFound(format!("template {SOURCE}/{}/{}@{} not found", at.org, at.name, at.version))
}

/// What a publish starts with (`StartTemplatePublishResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub operation_id: String,
    pub upload_url: String,
}

/// Starts publishing a version: an upload URL for the archive, the version pending. 409 when
/// the version is already published or the quota is full.
pub async fn start(app: &App, at: &TemplateRef) -> Result<Started> {
    artifacts::check_quota(app, &at.org, 0).await?;
    let meta = app.ports.meta.as_ref();
    let upload = artifacts::begin(app, &at.org).await?;
    let version = Version {
        at: at.clone(),
        complete: false,
        upload: Some(upload.key.clone()),
        sha256: None,
        size: 0,
        language: String::new(),
        description: None,
        readme: None,
        updated: app.clock.now(),
    };
    let cond = Condition::NotExists.or(Condition::Equals("state".into(), Value::S(PENDING.into())));
    match meta.put(version.item(), Some(cond)).await {
        Ok(()) => {}
        Err(crate::ports::MetaError::ConditionFailed) => {
            return Err(Error::Conflict(format!(
                "template {}/{}@{} is already published; a version cannot be published twice",
                at.org, at.name, at.version
            )))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Started { operation_id: operation_id(&upload.key).to_string(), upload_url: upload.url })
}

/// Reads a version, or 404.
pub async fn get_version(meta: &dyn MetadataStore, at: &TemplateRef) -> Result<Version> {
    match meta.get(&item_keys::org_pk(&at.org), &at.sk()).await? {
        Some(item) => Version::from_item(&at.org, &item),
        None => Err(not_found(at)),
    }
}

/// What a template's `Pulumi.yaml` says of it, and its readme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub runtime: String,
    pub description: Option<String>,
    /// The archive's root `README.md` (any case), when it has one.
    pub readme: Option<Vec<u8>>,
}

/// Reads `Pulumi.yaml` (or `Pulumi.yml`) and `README.md` at the root of a tar.gz (or plain
/// tar): 400 when the archive does not read or has no project file, as `pulumi new` could not
/// use it.
pub fn read_project(archive: &[u8]) -> Result<Project> {
    let bad = |why: String| Error::BadRequest(format!("the template archive {why}"));
    let gz = archive.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> =
        if gz { Box::new(flate2::read::GzDecoder::new(archive)) } else { Box::new(archive) };
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| bad(format!("is not a tar.gz: {e}")))?;
    let (mut project, mut readme) = (None, None);
    for entry in entries {
        let entry = entry.map_err(|e| bad(format!("is not a tar.gz: {e}")))?;
        let path = entry.path().map_err(|e| bad(format!("has a bad path: {e}")))?;
        let name = path.to_string_lossy().trim_start_matches("./").to_string();
        if name.eq_ignore_ascii_case("README.md") && readme.is_none() {
            let mut bytes = Vec::new();
            entry
                .take(MAX_PROJECT_FILE)
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("has an unreadable README.md: {e}")))?;
            readme = Some(bytes).filter(|b| !b.is_empty());
        } else if (name == "Pulumi.yaml" || name == "Pulumi.yml") && project.is_none() {
            let mut text = String::new();
            entry
                .take(MAX_PROJECT_FILE)
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("has an unreadable Pulumi.yaml: {e}")))?;
            project = Some(
                project_of(&text).map_err(|why| bad(format!("has a Pulumi.yaml that {why}")))?,
            );
        }
    }
    let project = project.ok_or_else(|| bad("has no Pulumi.yaml at its root".into()))?;
    Ok(Project { readme, ..project })
}

fn project_of(text: &str) -> std::result::Result<Project, String> {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("does not parse: {e}"))?;
    let doc = docs.first().ok_or("is empty")?;
    let runtime = match &doc["runtime"] {
        Yaml::String(s) => s.clone(),
        other => other["name"].as_str().ok_or("names no runtime")?.to_string(),
    };
    Ok(Project {
        runtime,
        description: doc["description"].as_str().map(str::to_string),
        readme: None,
    })
}

/// Finishes publishing: the archive named by `operation` is checked (a template `pulumi new`
/// can use), stored by content and referenced, the version complete in the same transaction.
/// Completing a complete version again is a no-op.
pub async fn complete(app: &App, at: &TemplateRef, operation: &str) -> Result<Version> {
    let meta = app.ports.meta.as_ref();
    let version = get_version(meta, at).await?;
    if version.complete {
        return Ok(version);
    }
    let Some(upload) = version.upload.clone() else {
        return Err(Error::internal("pending template version without an upload"));
    };
    if operation_id(&upload) != operation {
        return Err(Error::BadRequest(format!(
            "operation {operation:?} is not this version's publish; start it again"
        )));
    }
    let stored = artifacts::read_upload(app, &upload, Expect::default()).await?;
    let project = read_project(&stored.bytes)?;
    let readme = project.readme.clone().map(|b| Stored::of(b.into()));
    let all: Vec<&Stored> = std::iter::once(&stored).chain(readme.as_ref()).collect();
    for read in &all {
        artifacts::keep(app, read).await?;
    }
    let outcome = retry_on_conflict!(12, async {
        let current = get_version(meta, at).await?;
        if current.complete {
            return Ok(Attempt::Done((current, true)));
        }
        if current.upload.as_deref() != Some(upload.as_str()) {
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
            upload: None,
            sha256: Some(stored.sha256.clone()),
            size: stored.size,
            language: project.runtime.clone(),
            description: project.description.clone(),
            readme: readme.as_ref().map(|r| (r.sha256.clone(), r.size)),
            updated: app.clock.now(),
            ..current
        };
        let cond = Condition::Equals("upload".into(), Value::S(upload.clone()));
        let mut ops = reference.ops;
        ops.push(TransactOp::Put(done.item(), Some(cond)));
        written(meta.transact(ops).await, (done, reference.protected))
    })?;
    let (done, protected) = outcome.ok_or_else(|| {
        Error::Unavailable("the artifact store is busy with this archive, try again".into())
    })?;
    artifacts::ensure_stored(app, &all, &[&upload], protected).await?;
    Ok(done)
}

/// `TemplateRuntimeInfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RuntimeInfo {
    pub name: String,
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// A template as the registry lists it (`TemplateMetadata`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TemplateMetadata {
    pub name: String,
    pub publisher: String,
    pub source: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub language: String,
    /// The runtime of its `Pulumi.yaml` (`TemplateRuntimeInfo`; options are not kept).
    pub runtime: RuntimeInfo,
    #[serde(rename = "readmeURL")]
    pub readme_url: String,
    /// A short-lived URL of the archive (a plain GET, no credentials).
    #[serde(rename = "downloadURL")]
    pub download_url: String,
    pub visibility: String,
    /// RFC 3339.
    pub updated_at: String,
    /// The version this entry describes.
    pub metadata: std::collections::BTreeMap<String, String>,
}

async fn metadata(app: &App, v: &Version) -> Result<TemplateMetadata> {
    let sha =
        v.sha256.as_deref().ok_or_else(|| Error::internal("complete template without archive"))?;
    Ok(TemplateMetadata {
        name: v.at.name.clone(),
        publisher: v.at.org.clone(),
        source: SOURCE.into(),
        display_name: v.at.name.clone(),
        description: v.description.clone(),
        language: v.language.clone(),
        runtime: RuntimeInfo { name: v.language.clone(), options: Default::default() },
        readme_url: match &v.readme {
            Some((readme, _)) => artifacts::download_url(app, readme).await?,
            None => String::new(),
        },
        download_url: artifacts::download_url(app, sha).await?,
        visibility: "private".into(),
        updated_at: super::environments::rfc3339(v.updated),
        metadata: [("version".to_string(), v.at.version.to_string())].into(),
    })
}

/// The complete versions of `org`'s templates, by name then version.
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

/// The newest version of each template of `orgs` (only `name`'s, and only those whose name
/// or description holds `search`, when given), by publisher and name.
pub async fn list(
    app: &App,
    orgs: &[String],
    name: Option<&str>,
    search: Option<&str>,
) -> Result<Vec<TemplateMetadata>> {
    let meta = app.ports.meta.as_ref();
    let mut out = Vec::new();
    for org in orgs {
        let all = versions(meta, org, name).await?;
        for (i, v) in all.iter().enumerate() {
            // Sorted by name then version: the last of each name is its newest.
            if all.get(i + 1).is_some_and(|next| next.at.name == v.at.name) {
                continue;
            }
            let hay = format!("{} {}", v.at.name, v.description.as_deref().unwrap_or_default());
            if search.is_some_and(|s| !hay.to_lowercase().contains(&s.to_lowercase())) {
                continue;
            }
            out.push(metadata(app, v).await?);
        }
    }
    Ok(out)
}

/// One version (`latest`: the newest), with its download URL.
pub async fn get(app: &App, org: &str, name: &str, version: &str) -> Result<TemplateMetadata> {
    let v = resolve(app.ports.meta.as_ref(), org, name, version).await?;
    metadata(app, &v).await
}

/// A version in a template's list (`TemplateVersion`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TemplateVersion {
    #[serde(flatten)]
    pub template: TemplateMetadata,
    pub version: String,
}

/// Every published version of `org`'s template `name`, the newest first (404 when none is).
pub async fn list_versions(app: &App, org: &str, name: &str) -> Result<Vec<TemplateVersion>> {
    let name = parse_name(name)?;
    let all = versions(app.ports.meta.as_ref(), org, Some(&name)).await?;
    if all.is_empty() {
        return Err(Error::NotFound(format!("template {SOURCE}/{org}/{name} not found")));
    }
    let mut out = Vec::with_capacity(all.len());
    for v in all.iter().rev() {
        out.push(TemplateVersion {
            template: metadata(app, v).await?,
            version: v.at.version.to_string(),
        });
    }
    Ok(out)
}

/// The readme of a version (`latest`: the newest): its archive's `README.md`, or None.
pub async fn readme(app: &App, org: &str, name: &str, version: &str) -> Result<Option<String>> {
    let v = resolve(app.ports.meta.as_ref(), org, name, version).await?;
    let Some((sha, _)) = &v.readme else { return Ok(None) };
    let bytes = artifacts::read_stored(app, sha).await?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The complete version `version` (`latest`: the newest) of `org`'s template `name`, or 404.
async fn resolve(
    meta: &dyn MetadataStore,
    org: &str,
    name: &str,
    version: &str,
) -> Result<Version> {
    let name = parse_name(name)?;
    let v = if version == "latest" {
        versions(meta, org, Some(&name)).await?.pop().ok_or_else(|| {
            Error::NotFound(format!("template {SOURCE}/{org}/{name} has no published version"))
        })?
    } else {
        let at = TemplateRef { org: org.into(), name, version: parse_version(version)? };
        let v = get_version(meta, &at).await?;
        if !v.complete {
            return Err(not_found(&at));
        }
        v
    };
    Ok(v)
}

/// Removes a version, giving back its archive's reference.
pub async fn remove(app: &App, at: &TemplateRef) -> Result<()> {
    let v = get_version(app.ports.meta.as_ref(), at).await?;
    let references = v.references();
    let key = (item_keys::org_pk(&at.org), at.sk());
    artifacts::remove_owner(
        app,
        &at.org,
        (&key.0, &key.1),
        &references,
        v.upload.as_deref().as_slice(),
        "template",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, text.as_bytes()).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        crate::service::deployments::gzip(&tar).unwrap().to_vec()
    }

    #[test]
    fn the_project_file_at_the_root_names_the_runtime() {
        let a = tgz(&[
            ("README.md", "hi"),
            ("Pulumi.yaml", "name: web\nruntime: yaml\ndescription: A web app\n"),
        ]);
        assert_eq!(
            read_project(&a).unwrap(),
            Project {
                runtime: "yaml".into(),
                description: Some("A web app".into()),
                readme: Some(b"hi".to_vec()),
            }
        );
        let nested = tgz(&[
            ("docs/README.md", "no"),
            (
                "Pulumi.yaml",
                "runtime: go
",
            ),
        ]);
        assert_eq!(read_project(&nested).unwrap().readme, None, "only the root's readme");
        let b = tgz(&[("Pulumi.yaml", "name: x\nruntime:\n  name: python\n  options: {}\n")]);
        assert_eq!(read_project(&b).unwrap().runtime, "python");
        for bad in [
            tgz(&[("sub/Pulumi.yaml", "runtime: yaml\n")]),
            tgz(&[("Pulumi.yaml", "name: x\n")]),
            b"not a tar".to_vec(),
        ] {
            let err = read_project(&bad).expect_err("refused");
            assert_eq!(err.status().as_u16(), 400, "{err}");
        }
    }

    #[test]
    fn items_round_trip_with_the_readme_they_reference() {
        let mut v = Version {
            at: TemplateRef::parse("private", "acme", "web", "1.0.0").unwrap(),
            complete: true,
            upload: None,
            sha256: Some("a".into()),
            size: 3,
            language: "yaml".into(),
            description: None,
            readme: Some(("b".into(), 4)),
            updated: 9,
        };
        assert_eq!(Version::from_item("acme", &v.item()).unwrap(), v);
        assert_eq!(v.references(), vec![("a", 3), ("b", 4)]);
        v.complete = false;
        assert!(v.references().is_empty(), "a pending version references nothing");
    }

    #[test]
    fn names_versions_and_sources_are_validated() {
        assert!(TemplateRef::parse("private", "acme", "web-app_1.x", "1.2.3-rc.1").is_ok());
        assert!(TemplateRef::parse("pulumi", "acme", "web", "1.0.0").is_err());
        assert!(TemplateRef::parse("private", "acme", "a/b", "1.0.0").is_err());
        assert!(TemplateRef::parse("private", "acme", "web", "1.0").is_err());
        assert_eq!(operation_id("uploads/acme/000000000042-abc"), "000000000042-abc");
    }

    proptest::proptest! {
        /// Any bytes as an archive are read or refused with a 400, never a panic.
        #[test]
        fn any_archive_is_read_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            if let Err(e) = read_project(&bytes) {
                proptest::prop_assert_eq!(e.status().as_u16(), 400);
            }
            let mut gz = vec![0x1f, 0x8b];
            gz.extend_from_slice(&bytes);
            let _ = read_project(&gz);
        }
    }
}
