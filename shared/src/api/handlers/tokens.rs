//! Access token routes (Pulumi Cloud's shape): personal tokens under `/api/user/tokens`,
//! organization tokens under `/api/orgs/{org}/tokens` and team tokens under
//! `/api/orgs/{org}/teams/{team}/tokens`. Organization admin rights were checked by dispatch;
//! personal tokens are managed only with a personal token (a machine token has no user).

use serde::{Deserialize, Serialize};

use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::names::TeamName;
use crate::service::tokens::{self, NewToken, Owner, TokenInfo};

/// `POST …/tokens` body. `name` is optional for personal tokens (the description names them).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "CreateTokenRequest"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    expires: i64,
    #[serde(default)]
    admin: bool,
}

/// `POST …/tokens` response: the value, shown this once.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "CreateTokenResponse"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateResponse {
    id: String,
    token_value: String,
}

/// One token of a listing.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "AccessToken"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenJson {
    id: String,
    name: String,
    description: String,
    created: i64,
    last_used: i64,
    expires: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<bool>,
    /// `personal`, `organization` or `team` (Pulumi Cloud's `AccessTokenType`).
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `GET …/tokens` response.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ListTokensResponse"))]
pub(crate) struct ListResponse {
    tokens: Vec<TokenJson>,
}

fn user_owner(ctx: &Ctx) -> Result<Owner> {
    match ctx.caller.principal()?.user() {
        Some(user) => Ok(Owner::User(user.to_string())),
        None => Err(Error::Forbidden(
            "personal access tokens can only be managed with a personal access token".into(),
        )),
    }
}

fn org_owner(ctx: &Ctx) -> Result<Owner> {
    Ok(Owner::Org(path_org(ctx)?.to_string()))
}

fn team_owner(ctx: &Ctx) -> Result<Owner> {
    let org = path_org(ctx)?.to_string();
    let team = TeamName::parse(ctx.param("team")?)?.to_string();
    Ok(Owner::Team { org, team })
}

async fn create(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let req: CreateRequest = ctx.json()?;
    let name = match (&owner, req.name) {
        (_, Some(name)) if !name.trim().is_empty() => name,
        // Pulumi Cloud's personal tokens have only a description: it names them.
        (Owner::User(_), _) if !req.description.trim().is_empty() => {
            req.description.trim().chars().take(tokens::MAX_NAME_CHARS).collect()
        }
        (Owner::User(_), _) => "personal".to_string(),
        _ => return Err(Error::BadRequest("a token name is required".into())),
    };
    let admin = matches!(owner, Owner::Org(_)) && req.admin;
    let t = NewToken::parse(&name, &req.description, req.expires, admin, ctx.app.clock.now())?;
    let (info, value) =
        tokens::create(ctx.app.ports.meta.as_ref(), &owner, &t, ctx.app.clock.now()).await?;
    Reply::json(&CreateResponse { id: info.id, token_value: value })
}

async fn list(ctx: Ctx, owner: Owner) -> Result<Reply> {
    let org = matches!(owner, Owner::Org(_));
    let kind = match owner {
        Owner::User(_) => "personal",
        Owner::Org(_) => "organization",
        Owner::Team { .. } => "team",
    };
    let found = tokens::list(ctx.app.ports.meta.as_ref(), &owner).await?;
    let tokens = found
        .into_iter()
        .map(|t: TokenInfo| TokenJson {
            id: t.id,
            name: t.name,
            description: t.description,
            created: t.created,
            last_used: t.last_used,
            expires: t.expires,
            admin: org.then_some(t.admin),
            kind,
        })
        .collect();
    Reply::json(&ListResponse { tokens })
}

async fn delete(ctx: Ctx, owner: Owner) -> Result<Reply> {
    tokens::revoke(ctx.app.ports.meta.as_ref(), &owner, ctx.param("tokenId")?).await?;
    Ok(Reply::no_content())
}

/// `GET /api/user/tokens`.
pub async fn user_list(ctx: Ctx) -> Result<Reply> {
    let owner = user_owner(&ctx)?;
    list(ctx, owner).await
}

/// `POST /api/user/tokens`.
pub async fn user_create(ctx: Ctx) -> Result<Reply> {
    let owner = user_owner(&ctx)?;
    create(ctx, owner).await
}

/// `DELETE /api/user/tokens/{tokenId}`.
pub async fn user_delete(ctx: Ctx) -> Result<Reply> {
    let owner = user_owner(&ctx)?;
    delete(ctx, owner).await
}

/// `GET /api/orgs/{org}/tokens`.
pub async fn org_list(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx)?;
    list(ctx, owner).await
}

/// `POST /api/orgs/{org}/tokens`.
pub async fn org_create(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx)?;
    create(ctx, owner).await
}

/// `DELETE /api/orgs/{org}/tokens/{tokenId}`.
pub async fn org_delete(ctx: Ctx) -> Result<Reply> {
    let owner = org_owner(&ctx)?;
    delete(ctx, owner).await
}

/// `GET /api/orgs/{org}/teams/{team}/tokens`.
pub async fn team_list(ctx: Ctx) -> Result<Reply> {
    let owner = team_owner(&ctx)?;
    list(ctx, owner).await
}

/// `POST /api/orgs/{org}/teams/{team}/tokens`.
pub async fn team_create(ctx: Ctx) -> Result<Reply> {
    let owner = team_owner(&ctx)?;
    create(ctx, owner).await
}

/// `DELETE /api/orgs/{org}/teams/{team}/tokens/{tokenId}`.
pub async fn team_delete(ctx: Ctx) -> Result<Reply> {
    let owner = team_owner(&ctx)?;
    delete(ctx, owner).await
}
