//! `GET /api/user`, `GET /api/user/organizations/default`, `GET /api/capabilities`.

use crate::api::{Ctx, Reply};
use crate::apitype::{
    Capabilities, Capability, DefaultOrg, ServiceUser, ServiceUserOrg, TokenInfo,
};
use crate::error::{Error, Result};
use crate::service::identity::{self, Subject};

/// The caller's profile and organizations. An organization or team token answers as its
/// organization or team (with `tokenInfo` saying which), like Pulumi Cloud's machine tokens;
/// a personal token has no `tokenInfo`.
pub async fn get_user(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let principal = ctx.caller.principal()?;
    let login = principal.login().to_string();
    let email = match &principal.subject {
        Subject::User(name) => {
            identity::get_user(meta, name)
                .await?
                .ok_or_else(|| Error::Unauthorized(format!("user '{name}' no longer exists")))?
                .email
        }
        Subject::Org { .. } | Subject::Team { .. } => String::new(),
    };
    let organizations = identity::principal_orgs(meta, principal)
        .await?
        .into_iter()
        .map(|(org, role)| ServiceUserOrg {
            name: org.clone(),
            github_login: org,
            avatar_url: String::new(),
            role: role.as_str().to_string(),
        })
        .collect();
    // Pulumi Cloud sets `tokenInfo` only for machine (organization and team) tokens; the CLI
    // reads its absence as "Token type: personal" (`pulumi whoami -v`), its presence without
    // an organization or team as "unknown".
    let name = principal.token_name.clone();
    let token_info = match &principal.subject {
        Subject::User(_) => None,
        Subject::Org { org, .. } => {
            Some(TokenInfo { name, organization: Some(org.clone()), team: None })
        }
        Subject::Team { org, team } => {
            Some(TokenInfo { name, organization: Some(org.clone()), team: Some(team.clone()) })
        }
    };
    Reply::json(&ServiceUser {
        id: login.clone(),
        github_login: login.clone(),
        name: login,
        email,
        avatar_url: String::new(),
        organizations,
        identities: vec![],
        site_admin: false,
        has_mfa: false,
        is_org_managed: false,
        is_managed_by_multi_org: false,
        token_info,
    })
}

/// The caller's default organization: the stored one while they still belong to it, else
/// their first organization; 404 (the CLI then uses the user name) when they have none.
pub async fn default_org(ctx: Ctx) -> Result<Reply> {
    let meta = ctx.app.ports.meta.as_ref();
    let principal = ctx.caller.principal()?;
    let orgs = identity::principal_orgs(meta, principal).await?;
    let stored = match principal.user() {
        Some(user) => identity::get_user(meta, user).await?.and_then(|u| u.default_org),
        None => None,
    };
    let chosen = stored
        .filter(|d| orgs.iter().any(|(o, _)| o == d))
        .or_else(|| orgs.first().map(|(o, _)| o.clone()))
        .ok_or_else(|| {
            Error::NotFound(format!("'{}' has no default organization", principal.login()))
        })?;
    Reply::json(&DefaultOrg { github_login: chosen, messages: vec![] })
}

/// Capabilities this server advertises (docs/PROTOCOL-NOTES.md, Capabilities): delta checkpoints
/// (large stacks send text edits instead of the whole state), `batch-encrypt` (one call per batch
/// of secrets instead of one per value) and `deployment-schema-version` 4, because deployments are
/// stored exactly as received, features included.
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
            // `pulumi policy install` asks `GET …/policypacks` for a stack's required packs
            // only with this (updates get them from their creation either way).
            Capability {
                capability: "stack-policy-packs".into(),
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
