//! `GET /api/user`, `GET /api/user/organizations/default`, `GET /api/capabilities`.

use crate::api::{Ctx, Reply};
use crate::apitype::{
    Capabilities, Capability, DefaultOrg, ServiceUser, ServiceUserOrg, TokenInfo,
};
use crate::error::{Error, Result};
use crate::service::identity::{self, Caller};

/// The caller's profile and organizations.
pub async fn get_user(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let name = ctx.caller.user()?;
    let user = identity::get_user(meta, name)
        .await?
        .ok_or_else(|| Error::Unauthorized(format!("user '{name}' no longer exists")))?;
    let organizations = identity::user_orgs(meta, name)
        .await?
        .into_iter()
        .map(|(org, _)| ServiceUserOrg {
            name: org.clone(),
            github_login: org,
            avatar_url: String::new(),
        })
        .collect();
    let token_info = match &ctx.caller {
        Caller::User { token_name, .. } => Some(TokenInfo { name: token_name.clone() }),
        _ => None,
    };
    Reply::json(&ServiceUser {
        id: user.name.clone(),
        github_login: user.name.clone(),
        name: user.name,
        email: user.email,
        avatar_url: String::new(),
        organizations,
        identities: vec![],
        site_admin: false,
        token_info,
    })
}

/// The caller's default organization: the stored one while they still belong to it, else
/// their first organization; 404 (the CLI then uses the user name) when they have none.
pub async fn default_org(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let name = ctx.caller.user()?;
    let orgs = identity::user_orgs(meta, name).await?;
    let stored = identity::get_user(meta, name).await?.and_then(|u| u.default_org);
    let chosen = stored
        .filter(|d| orgs.iter().any(|(o, _)| o == d))
        .or_else(|| orgs.first().map(|(o, _)| o.clone()))
        .ok_or_else(|| Error::NotFound(format!("user '{name}' has no default organization")))?;
    Reply::json(&DefaultOrg { github_login: chosen, messages: vec![] })
}

/// Capabilities this server advertises (PROTOCOL.md §2): delta checkpoints (large stacks send
/// text edits instead of the whole state), `batch-encrypt` (one call per batch
/// of secrets instead of one per value) and `deployment-schema-version` 4, because deployments
/// are stored exactly as received, features included.
pub async fn capabilities(ctx: Ctx) -> Result<Reply> {
    Reply::json(&Capabilities {
        capabilities: vec![
            Capability {
                capability: "delta-checkpoint-uploads-v2".into(),
                version: Some(2),
                configuration: Some(serde_json::json!({
                    "checkpointCutoffSizeBytes": ctx.app.settings.checkpoint_cutoff_bytes
                })),
            },
            Capability {
                capability: "batch-encrypt".into(),
                version: Some(1),
                configuration: None,
            },
            Capability {
                capability: "deployment-schema-version".into(),
                version: Some(1),
                configuration: Some(serde_json::json!({ "version": 4 })),
            },
        ],
    })
}
