//! Environment routes (Pulumi ESC's REST API, `/api/esc/environments`), as the CLI's
//! `pulumi env` and a stack's `environment:` imports call them. Definitions travel as YAML
//! (whatever the Content-Type says); reads and writes of a definition answer with its revision
//! in `Pulumi-ESC-Revision` and its ETag.

use http::{header, HeaderValue};
use serde::Deserialize;
use serde_json::Value as Json;

use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::ports::MetadataStore;
use crate::service::access::OrgAccess;
use crate::service::env::wire::{self, Secrets};
use crate::service::environments::access as env_access;
use crate::service::environments::evaluate::{self, Mode};
use crate::service::environments::{
    self as envs, definition, revisions, sessions, tags, EnvRef, DEFAULT_PROJECT,
};
use crate::service::identity;

/// The header carrying a definition's revision number.
pub const REVISION_HEADER: &str = "pulumi-esc-revision";

fn env_ref(ctx: &Ctx) -> Result<EnvRef> {
    crate::api::auth::env_ref(&ctx.params)
}

fn version(ctx: &Ctx) -> Option<&str> {
    ctx.params.get("revision").map(String::as_str)
}

fn yaml_body(ctx: &Ctx) -> Result<String> {
    String::from_utf8(ctx.body.to_vec())
        .map_err(|_| Error::BadRequest("the definition must be UTF-8 YAML".into()))
}

fn header_value(v: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(v).map_err(|_| Error::internal("header value"))
}

/// A list page (`ListEnvironmentsResponse`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct EnvironmentList {
    environments: Vec<envs::OrgEnvironment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// `GET /api/esc/environments/{org}`: the organization's environments, by project and name.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let token = ctx.query("continuationToken").filter(|t| !t.is_empty());
    let meta = ctx.app.ports.meta.as_ref();
    let (found, next) = envs::list(meta, org.as_str(), token).await?;
    let access = OrgAccess::resolve(meta, ctx.caller.principal()?, org.as_str()).await?;
    Reply::json(&EnvironmentList {
        environments: readable(meta, &access, found).await?,
        next_token: next,
    })
}

/// The summaries of the environments of `found` the caller may read.
async fn readable(
    meta: &dyn MetadataStore,
    access: &OrgAccess,
    found: Vec<envs::Environment>,
) -> Result<Vec<envs::OrgEnvironment>> {
    let sees = env_access::Visibility::resolve(meta, access).await?;
    let mut out = Vec::with_capacity(found.len());
    for env in &found {
        if sees.may_read(meta, env).await? {
            out.push(env.summary());
        }
    }
    Ok(out)
}

/// `GET /api/esc/environments`: the environments of every organization the caller is in; the
/// continuation token is `<org>/<project>/<name>` of the last one listed.
pub async fn list_all(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let mut orgs: Vec<String> = identity::principal_orgs(meta, ctx.caller.principal()?)
        .await?
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    orgs.sort();
    let token = ctx.query("continuationToken").filter(|t| !t.is_empty());
    let (start_org, mut after) = match token.and_then(|t| t.split_once('/')) {
        Some((o, rest)) => (o.to_string(), Some(rest.to_string())),
        None => (String::new(), None),
    };
    for org in orgs.iter().filter(|o| **o >= start_org) {
        let from = if *org == start_org { after.take() } else { None };
        let (found, next) = envs::list(meta, org, from.as_deref()).await?;
        if found.is_empty() && next.is_none() {
            continue;
        }
        let access = OrgAccess::resolve(meta, ctx.caller.principal()?, org).await?;
        return Reply::json(&EnvironmentList {
            environments: readable(meta, &access, found).await?,
            next_token: match next {
                Some(n) => Some(format!("{org}/{n}")),
                None => orgs.iter().find(|o| *o > org).map(|o| format!("{o}/")),
            },
        });
    }
    Reply::json(&EnvironmentList { environments: vec![], next_token: None })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct CreateEnvironment {
    #[serde(default)]
    project: Option<String>,
    name: String,
}

/// `POST /api/esc/environments/{org}`: a new, empty environment (revision 1).
pub async fn create(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let req: CreateEnvironment = ctx.json()?;
    let project = req.project.filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PROJECT.into());
    let at = EnvRef::parse(org.as_str(), &project, &req.name)?;
    let env = envs::create(&ctx.app, &at, ctx.caller.user()?).await?;
    Reply::json(&env.summary())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct CloneEnvironment {
    #[serde(default)]
    project: Option<String>,
    name: String,
    #[serde(default)]
    version: Option<i64>,
    /// Accepted for Pulumi Cloud's shape; a clone starts with its own history, access and
    /// tags (only the definition is copied).
    #[serde(default)]
    #[allow(dead_code)]
    preserve_history: bool,
    #[serde(default)]
    #[allow(dead_code)]
    preserve_access: bool,
    #[serde(default)]
    #[allow(dead_code)]
    preserve_environment_tags: bool,
    #[serde(default)]
    #[allow(dead_code)]
    preserve_revision_tags: bool,
}

/// `POST …/{project}/{env}/clone`: a new environment with the source's definition (its
/// secrets encrypted again with the clone's own key).
pub async fn clone(ctx: Ctx) -> Result<Reply> {
    let source = env_ref(&ctx)?;
    let req: CloneEnvironment = ctx.json()?;
    let project = req.project.filter(|p| !p.is_empty()).unwrap_or_else(|| source.project.clone());
    let target = EnvRef::parse(&source.org, &project, &req.name)?;
    let version = req.version.filter(|v| *v > 0).map(|v| v.to_string());
    let read = definition::read(&ctx.app, &source, version.as_deref(), true).await?;
    let principal = ctx.caller.principal()?;
    let env = envs::create(&ctx.app, &target, principal.login()).await?;
    if !read.text.is_empty() {
        definition::update(&ctx.app, &target, &read.text, None, principal).await?;
    }
    Reply::json(&env.summary())
}

async fn definition_reply(ctx: &Ctx, decrypt: bool) -> Result<Reply> {
    let at = env_ref(ctx)?;
    let read = definition::read(&ctx.app, &at, version(ctx), decrypt).await?;
    Ok(Reply {
        content_type: "application/x-yaml",
        body: read.text.into_bytes().into(),
        headers: vec![
            (header::ETAG, header_value(&read.etag)?),
            (
                header::HeaderName::from_static(REVISION_HEADER),
                header_value(&read.revision.to_string())?,
            ),
        ],
        ..Reply::ok_empty()
    })
}

/// `GET …/{project}/{env}` and `…/versions/{version}`: the definition as stored (secrets as
/// ciphertexts).
pub async fn get(ctx: Ctx) -> Result<Reply> {
    definition_reply(&ctx, false).await
}

/// `GET …/decrypt` and `…/versions/{version}/decrypt`: the definition with its secrets in the
/// clear (an audited call).
pub async fn decrypt(ctx: Ctx) -> Result<Reply> {
    definition_reply(&ctx, true).await
}

/// `PATCH …/{project}/{env}`: a new definition (YAML), optionally `If-Match` the ETag read.
pub async fn update(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let text = yaml_body(&ctx)?;
    let if_match = ctx.headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let revision =
        definition::update(&ctx.app, &at, &text, if_match, ctx.caller.principal()?).await?;
    let mut reply = Reply::json(&serde_json::json!({}))?;
    reply.headers.push((header::ETAG, header_value(&revision.to_string())?));
    reply.headers.push((
        header::HeaderName::from_static(REVISION_HEADER),
        header_value(&revision.to_string())?,
    ));
    Ok(reply)
}

/// `DELETE …/{project}/{env}`.
pub async fn delete(ctx: Ctx) -> Result<Reply> {
    envs::delete(&ctx.app, &env_ref(&ctx)?).await?;
    Ok(Reply::no_content())
}

fn show_secrets(ctx: &Ctx) -> Result<Secrets> {
    Ok(if ctx.query_bool("showSecrets")? { Secrets::Show } else { Secrets::Redact })
}

/// Answers an evaluation: 400 with its diagnostics when it has any, else the environment.
fn evaluated_reply<'a>(
    outcome: &'a evaluate::Outcome,
    name: &str,
    secrets: Secrets,
) -> Result<wire::Rendered<'a>> {
    if !outcome.evaluated.diagnostics.is_empty() {
        let diags = &outcome.evaluated.diagnostics;
        return Err(Error::Diagnostics(
            format!("the environment has {} error(s): {}", diags.len(), diags[0].summary),
            wire::diagnostics(diags, name),
        ));
    }
    Ok(wire::environment(&outcome.evaluated, name, secrets, &outcome.context))
}

/// `POST …/{project}/{env}/check` (and at a version): evaluates without opening providers.
pub async fn check(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let env = ctx.environment().await?;
    let n = revisions::resolve(meta, &env, version(&ctx)).await?;
    let text = definition::revision_text(&ctx.app, &env, n).await?;
    let (principal, access) = (ctx.caller.principal()?, ctx.org_access().await?);
    let outcome = evaluate::named(&ctx.app, &env, &text, principal, &access, Mode::Check).await?;
    Reply::json(&evaluated_reply(&outcome, &at.qualified(), show_secrets(&ctx)?)?)
}

/// `POST /api/esc/environments/{org}/yaml/check?showSecrets=`: checks an anonymous definition.
pub async fn yaml_check(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let text = yaml_body(&ctx)?;
    let (principal, access) = (ctx.caller.principal()?, ctx.org_access().await?);
    let outcome =
        evaluate::anonymous(&ctx.app, org.as_str(), &text, principal, &access, Mode::Check).await?;
    Reply::json(&evaluated_reply(&outcome, evaluate::YAML_NAME, show_secrets(&ctx)?)?)
}

fn duration(ctx: &Ctx) -> Result<i64> {
    match ctx.query("duration").filter(|d| !d.is_empty()) {
        Some(d) => sessions::parse_duration(d),
        None => Ok(sessions::DEFAULT_SECONDS),
    }
}

/// `OpenEnvironmentResponse`.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Opened {
    id: String,
}

/// `POST …/{project}/{env}/open?duration=` (and at a version): evaluates with providers
/// opened and keeps the result for the duration (an audited call).
pub async fn open(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let seconds = duration(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let env = ctx.environment().await?;
    let n = revisions::resolve(meta, &env, version(&ctx)).await?;
    let text = definition::revision_text(&ctx.app, &env, n).await?;
    let (principal, access) = (ctx.caller.principal()?, ctx.org_access().await?);
    let outcome = evaluate::named(&ctx.app, &env, &text, principal, &access, Mode::Open).await?;
    let opened = evaluated_reply(&outcome, &at.qualified(), Secrets::Show)?;
    let id = sessions::create(&ctx.app, &at.org, Some(&env.id), &opened, seconds).await?;
    Reply::json(&Opened { id })
}

/// `POST /api/esc/environments/{org}/yaml/open?duration=`: opens an anonymous definition (a
/// stack's `environment:`).
pub async fn yaml_open(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let seconds = duration(&ctx)?;
    let text = yaml_body(&ctx)?;
    let (principal, access) = (ctx.caller.principal()?, ctx.org_access().await?);
    let outcome =
        evaluate::anonymous(&ctx.app, org.as_str(), &text, principal, &access, Mode::Open).await?;
    let opened = evaluated_reply(&outcome, evaluate::YAML_NAME, Secrets::Show)?;
    let id = sessions::create(&ctx.app, org.as_str(), None, &opened, seconds).await?;
    Reply::json(&Opened { id })
}

/// The whole opened environment (as stored: no parse), or one property of it
/// (`?property=a.b[0]`).
fn session_reply(ctx: &Ctx, stored: bytes::Bytes) -> Result<Reply> {
    let Some(path) = ctx.query("property").filter(|p| !p.is_empty()) else {
        return Ok(Reply::raw_json(stored));
    };
    let opened: Json = serde_json::from_slice(&stored)
        .map_err(|e| Error::caused("stored session is corrupt", e))?;
    let parsed =
        crate::service::env::expr::path(path, Default::default()).map_err(Error::BadRequest)?;
    let mut at = opened.get("properties").cloned().unwrap_or(Json::Null);
    for (i, accessor) in parsed.accessors.iter().enumerate() {
        // Below the top level, each value is wrapped: step into its `value`.
        let container = if i == 0 { at } else { at.get("value").cloned().unwrap_or(Json::Null) };
        let next = match accessor {
            crate::service::env::expr::Accessor::Key(k) => container.get(k).cloned(),
            crate::service::env::expr::Accessor::Index(n) => container.get(n).cloned(),
        };
        at = next.ok_or_else(|| Error::NotFound(format!("property {path} not found")))?;
    }
    Reply::json(&at)
}

/// `GET …/{project}/{env}/open/{open}`: an open session's values (an audited call).
pub async fn open_read(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let env = envs::get(ctx.app.ports.meta.as_ref(), &at).await?;
    let opened = sessions::read(&ctx.app, &at.org, Some(&env.id), ctx.param("open")?).await?;
    session_reply(&ctx, opened)
}

/// `GET /api/esc/environments/{org}/yaml/open/{open}`: an anonymous open session's values.
pub async fn yaml_open_read(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let opened = sessions::read(&ctx.app, org.as_str(), None, ctx.param("open")?).await?;
    session_reply(&ctx, opened)
}

/// `GET …/versions?before=&count=`: revisions, newest first.
pub async fn revisions_list(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let before: i64 = ctx.query_number("before", 0..=i64::MAX, 0)?;
    let count: usize = ctx.query_number("count", 1..=revisions::MAX_PAGE, 100)?;
    let meta = ctx.app.ports.meta.as_ref();
    let env = envs::get(meta, &at).await?;
    Reply::json(&revisions::list(meta, &env, before, count).await?)
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Retract {
    #[serde(default)]
    replacement: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST …/versions/{version}/retract`.
pub async fn retract(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let req: Retract = if ctx.body.is_empty() { Retract::default() } else { ctx.json()? };
    let v = ctx.param("revision")?;
    revisions::retract(
        &ctx.app,
        &at,
        v,
        req.replacement,
        req.reason.unwrap_or_default(),
        ctx.caller.user()?,
    )
    .await?;
    Ok(Reply::no_content())
}

/// `ListEnvironmentRevisionTagsResponse`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RevisionTagList {
    tags: Vec<revisions::RevisionTag>,
    next_token: String,
}

/// `GET …/versions/tags?after=&count=`: revision tags by name after `after`.
pub async fn revision_tags(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let count: usize = ctx.query_number("count", 1..=revisions::MAX_PAGE, 100)?;
    let meta = ctx.app.ports.meta.as_ref();
    let env = envs::get(meta, &at).await?;
    let found = revisions::tags(meta, &env, ctx.query("after").unwrap_or_default(), count).await?;
    let next_token = found.last().map(|t| t.name.clone()).unwrap_or_default();
    Reply::json(&RevisionTagList { tags: found, next_token })
}

/// `GET …/versions/tags/{tag}`.
pub async fn revision_tag_get(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let env = envs::get(meta, &at).await?;
    Reply::json(&revisions::tag(meta, &env, ctx.param("tag")?).await?)
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RevisionTagCreate {
    name: String,
    #[serde(default)]
    revision: Option<i64>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct RevisionTagUpdate {
    #[serde(default)]
    revision: Option<i64>,
}

/// `POST …/versions/tags`: names a revision (default: the newest).
pub async fn revision_tag_create(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let req: RevisionTagCreate = ctx.json()?;
    let tag = revisions::set_tag(&ctx.app, &at, &req.name, req.revision, true, ctx.caller.user()?)
        .await?;
    Reply::json(&tag)
}

/// `PATCH …/versions/tags/{tag}`: moves a tag.
pub async fn revision_tag_update(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let req: RevisionTagUpdate = ctx.json()?;
    let tag = revisions::set_tag(
        &ctx.app,
        &at,
        ctx.param("tag")?,
        req.revision,
        false,
        ctx.caller.user()?,
    )
    .await?;
    Reply::json(&tag)
}

/// `DELETE …/versions/tags/{tag}`.
pub async fn revision_tag_delete(ctx: Ctx) -> Result<Reply> {
    revisions::delete_tag(&ctx.app, &env_ref(&ctx)?, ctx.param("tag")?).await?;
    Ok(Reply::no_content())
}

/// `ListEnvironmentTagsResponse`: tags by name; `nextToken` "0" on the last page (the CLI
/// stops on it).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TagList {
    tags: std::collections::BTreeMap<String, tags::Tag>,
    next_token: String,
}

/// `GET …/tags`.
pub async fn tags_list(ctx: Ctx) -> Result<Reply> {
    let found = tags::list(&ctx.app, &env_ref(&ctx)?).await?;
    let after = ctx.query("after").unwrap_or_default();
    let tags = found
        .into_iter()
        .filter(|t| t.name.as_str() > after)
        .map(|t| (t.name.clone(), t))
        .collect();
    Reply::json(&TagList { tags, next_token: "0".into() })
}

/// `GET …/tags/{tag}`.
pub async fn tag_get(ctx: Ctx) -> Result<Reply> {
    Reply::json(&tags::one(&ctx.app, &env_ref(&ctx)?, ctx.param("tag")?).await?)
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TagRequest {
    name: String,
    #[serde(default)]
    value: String,
}

/// `POST …/tags`.
pub async fn tag_create(ctx: Ctx) -> Result<Reply> {
    let req: TagRequest = ctx.json()?;
    let tag =
        tags::create(&ctx.app, &env_ref(&ctx)?, &req.name, &req.value, ctx.caller.user()?).await?;
    Reply::json(&tag)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TagUpdate {
    /// The tag's current value as the client saw it (the name is the path's).
    #[serde(default)]
    #[allow(dead_code)]
    current_tag: Option<TagPart>,
    #[serde(default)]
    new_tag: Option<TagPart>,
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct TagPart {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

/// `PATCH …/tags/{tag}`: renames and/or changes a tag.
pub async fn tag_update(ctx: Ctx) -> Result<Reply> {
    let req: TagUpdate = ctx.json()?;
    let new = req.new_tag.unwrap_or_default();
    let tag = tags::update(
        &ctx.app,
        &env_ref(&ctx)?,
        ctx.param("tag")?,
        &new.name,
        &new.value,
        ctx.caller.user()?,
    )
    .await?;
    Reply::json(&tag)
}

/// `DELETE …/tags/{tag}`.
pub async fn tag_delete(ctx: Ctx) -> Result<Reply> {
    tags::delete(&ctx.app, &env_ref(&ctx)?, ctx.param("tag")?).await?;
    Ok(Reply::no_content())
}

/// `EnvironmentSettings`.
#[derive(serde::Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct Settings {
    #[serde(default)]
    deletion_protected: Option<bool>,
}

/// `GET …/settings`.
pub async fn settings_get(ctx: Ctx) -> Result<Reply> {
    let env = envs::get(ctx.app.ports.meta.as_ref(), &env_ref(&ctx)?).await?;
    Reply::json(&Settings { deletion_protected: Some(env.deletion_protected) })
}

/// `PATCH …/settings`.
pub async fn settings_update(ctx: Ctx) -> Result<Reply> {
    let at = env_ref(&ctx)?;
    let req: Settings = ctx.json()?;
    let env = match req.deletion_protected {
        Some(p) => envs::set_protection(&ctx.app, &at, p).await?,
        None => envs::get(ctx.app.ports.meta.as_ref(), &at).await?,
    };
    Reply::json(&Settings { deletion_protected: Some(env.deletion_protected) })
}
