//! Private registry routes (`/api/registry/templates`, `/api/registry/packages`), as `pulumi
//! template publish`, `pulumi template ls`, `pulumi new <publisher>/<name>@<version>`, `pulumi
//! package publish` and `pulumi package remove` call them. The publisher is the organization
//! (`{org}` in the path).

use serde::{Deserialize, Serialize};

use super::{caller_orgs, path_org};
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::packages::{self, PackageMetadata, PackageRef};
use crate::service::templates::{self, TemplateMetadata, TemplateRef};

fn template_ref(ctx: &Ctx) -> Result<TemplateRef> {
    let org = path_org(ctx)?;
    TemplateRef::parse(ctx.param("source")?, org.as_str(), ctx.param("name")?, ctx.param("semver")?)
}

/// `StartTemplatePublishRequest`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct StartPublish {
    version: String,
}

/// `TemplateUploadURLs`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct UploadUrls {
    archive: String,
}

/// `StartTemplatePublishResponse`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PublishStarted {
    #[serde(rename = "operationID")]
    operation_id: String,
    #[serde(rename = "uploadURLs")]
    upload_urls: UploadUrls,
}

/// `POST /api/registry/templates/{source}/{org}/{name}/versions`: starts publishing a version;
/// the client PUTs the tar.gz to `uploadURLs.archive`, then calls `…/{version}/complete`.
pub async fn template_publish(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let req: StartPublish = ctx.json()?;
    let at =
        TemplateRef::parse(ctx.param("source")?, org.as_str(), ctx.param("name")?, &req.version)?;
    let started = templates::start(&ctx.app, &at).await?;
    Reply::json(&PublishStarted {
        operation_id: started.operation_id,
        upload_urls: UploadUrls { archive: started.upload_url },
    })
}

/// `PublishTemplateVersionCompleteRequest`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct CompletePublish {
    #[serde(rename = "operationID")]
    operation_id: String,
}

/// `POST …/versions/{semver}/complete`: the archive is checked (a tar.gz with `Pulumi.yaml` at
/// its root), stored once by content, and the version listed. Idempotent.
pub async fn template_complete(ctx: Ctx) -> Result<Reply> {
    let req: CompletePublish = ctx.json()?;
    templates::complete(&ctx.app, &template_ref(&ctx)?, &req.operation_id).await?;
    Reply::json(&Completed {})
}

/// `PublishTemplateVersionCompleteResponse`: nothing more to say.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Completed {}

/// `GET …/versions/{semver}` (or `latest`): the version with a short-lived download URL.
pub async fn template_get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    templates::check_source(ctx.param("source")?)?;
    let got =
        templates::get(&ctx.app, org.as_str(), ctx.param("name")?, ctx.param("semver")?).await?;
    Reply::json(&got)
}

/// `ListTemplateVersionsResponse`: one page, the newest first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TemplateVersionList {
    templates: Vec<templates::TemplateVersion>,
}

/// `GET /api/registry/templates/{source}/{org}/{name}/versions`: every published version.
pub async fn template_versions(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    templates::check_source(ctx.param("source")?)?;
    let found = templates::list_versions(&ctx.app, org.as_str(), ctx.param("name")?).await?;
    Reply::json(&TemplateVersionList { templates: found })
}

/// `RegistryContentNode`: the readme is one markdown node.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct ContentNode {
    kind: &'static str,
    markdown: String,
}

/// `GetTemplateReadmeResponse`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TemplateReadme {
    version: String,
    /// As asked (`lang`); a template's readme is the same in every language.
    language: String,
    /// As asked (`os`).
    os: String,
    content: Vec<ContentNode>,
}

/// `GET …/versions/{semver}/readme` (or `latest`): the archive's root `README.md`, 404 when
/// it has none.
pub async fn template_readme(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    templates::check_source(ctx.param("source")?)?;
    let (name, version) = (ctx.param("name")?, ctx.param("semver")?);
    let Some(markdown) = templates::readme(&ctx.app, org.as_str(), name, version).await? else {
        return Err(Error::NotFound(format!(
            "template {}/{org}/{name}@{version} has no README.md",
            templates::SOURCE
        )));
    };
    let asked = |key: &str| ctx.query(key).unwrap_or_default().chars().take(32).collect();
    Reply::json(&TemplateReadme {
        version: version.to_string(),
        language: asked("lang"),
        os: asked("os"),
        content: vec![ContentNode { kind: "markdown", markdown }],
    })
}

/// `DELETE …/versions/{semver}`.
pub async fn template_delete(ctx: Ctx) -> Result<Reply> {
    templates::remove(&ctx.app, &template_ref(&ctx)?).await?;
    Ok(Reply::no_content())
}

/// `ListTemplatesResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TemplateList {
    templates: Vec<TemplateMetadata>,
}

/// `GET /api/registry/templates?name=&orgLogin=&search=`: the newest version of each template
/// of the caller's organizations (or of `orgLogin`, if they are in it), in one page.
pub async fn templates_list(ctx: Ctx) -> Result<Reply> {
    let orgs = caller_orgs(&ctx).await?;
    if ctx.query("source").is_some_and(|s| !s.is_empty() && s != templates::SOURCE) {
        return Reply::json(&TemplateList { templates: vec![] });
    }
    let name = ctx.query("name").filter(|n| !n.is_empty());
    if let Some(n) = name {
        templates::parse_name(n)?;
    }
    let search = ctx.query("search").filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.len() > 200) {
        return Err(Error::BadRequest("search is at most 200 characters".into()));
    }
    let found = templates::list(&ctx.app, &orgs, name, search).await?;
    Reply::json(&TemplateList { templates: found })
}

fn package_ref(ctx: &Ctx) -> Result<PackageRef> {
    let org = path_org(ctx)?;
    PackageRef::parse(ctx.param("source")?, org.as_str(), ctx.param("name")?, ctx.param("semver")?)
}

/// `PackageUpload`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PackageUploadUrls {
    schema: String,
    index: String,
    installation_configuration: String,
}

/// `StartPackagePublishResponse`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PackagePublishStarted {
    #[serde(rename = "operationID")]
    operation_id: String,
    #[serde(rename = "uploadURLs")]
    upload_urls: PackageUploadUrls,
}

/// `POST /api/registry/packages/{source}/{org}/{name}/versions`: starts publishing a version;
/// the client PUTs the schema, the readme (`index`) and, if it has them, installation notes,
/// then calls `…/{version}/complete`.
pub async fn package_publish(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let req: StartPublish = ctx.json()?;
    let at =
        PackageRef::parse(ctx.param("source")?, org.as_str(), ctx.param("name")?, &req.version)?;
    let started = packages::start(&ctx.app, &at).await?;
    let [schema, index, installation_configuration] = started.urls;
    Reply::json(&PackagePublishStarted {
        operation_id: started.operation_id,
        upload_urls: PackageUploadUrls { schema, index, installation_configuration },
    })
}

/// `POST …/versions/{semver}/complete`: the schema is checked (JSON naming this package and
/// version), everything uploaded stored once by content, and the version listed. Idempotent.
pub async fn package_complete(ctx: Ctx) -> Result<Reply> {
    let req: CompletePublish = ctx.json()?;
    packages::complete(&ctx.app, &package_ref(&ctx)?, &req.operation_id).await?;
    Reply::json(&Completed {})
}

/// `GET …/versions/{semver}` (or `latest`): the version with short-lived schema and readme URLs.
pub async fn package_get(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    templates::check_source(ctx.param("source")?)?;
    let got =
        packages::get(&ctx.app, org.as_str(), ctx.param("name")?, ctx.param("semver")?).await?;
    Reply::json(&got)
}

/// `DELETE …/versions/{semver}` (`pulumi package remove`).
pub async fn package_delete(ctx: Ctx) -> Result<Reply> {
    packages::remove(&ctx.app, &package_ref(&ctx)?).await?;
    Ok(Reply::no_content())
}

/// `ListPackagesResponse`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct PackageList {
    packages: Vec<PackageMetadata>,
}

/// `GET /api/registry/packages?name=`: the newest version of each package of the caller's
/// organizations, in one page.
pub async fn packages_list(ctx: Ctx) -> Result<Reply> {
    let orgs = caller_orgs(&ctx).await?;
    let name = ctx.query("name").filter(|n| !n.is_empty());
    if let Some(n) = name {
        templates::parse_name(n)?;
    }
    Reply::json(&PackageList { packages: packages::list(&ctx.app, &orgs, name).await? })
}
