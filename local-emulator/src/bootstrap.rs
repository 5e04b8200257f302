//! First-start identity: the user, organization and access token a fresh emulator needs.

use stackhouse::config::Env;
use stackhouse::service::identity;
use stackhouse::App;

/// Bootstrap settings (`STACKHOUSE_BOOTSTRAP_TOKEN`, `_USER`, `_ORG`).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// A token to make sure exists; when absent a random one is created on first start.
    pub token: Option<String>,
    /// User name (default `admin`).
    pub user: String,
    /// Organization (default: the user name).
    pub org: String,
}

impl Bootstrap {
    /// Reads the bootstrap variables (`STACKHOUSE_BOOTSTRAP_*`) from `env`.
    pub fn read(env: &Env<'_>) -> Bootstrap {
        let user = env.text_or_default("STACKHOUSE_BOOTSTRAP_USER").unwrap_or_default();
        let org = env.text("STACKHOUSE_BOOTSTRAP_ORG").unwrap_or_else(|| user.clone());
        Bootstrap { token: env.text("STACKHOUSE_BOOTSTRAP_TOKEN"), user, org }
    }
}

/// What bootstrapping did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The given token is in place.
    TokenEnsured,
    /// First start: a new random token (shown once, stored only as a hash).
    Created(String),
    /// The user existed already and no token was given: nothing to show.
    Existing,
}

/// Makes sure the bootstrap user, organization (user as admin) and token exist.
pub async fn run(app: &App, b: &Bootstrap) -> Result<Outcome, stackhouse::Error> {
    let user = stackhouse::names::OrgName::parse(&b.user)?;
    let org = stackhouse::names::OrgName::parse(&b.org)?;
    let meta = app.ports.meta.as_ref();
    let now = app.clock.now();
    if let Some(token) = &b.token {
        identity::ensure_identity(
            meta,
            user.as_str(),
            org.as_str(),
            Some((token, "bootstrap")),
            now,
        )
        .await?;
        return Ok(Outcome::TokenEnsured);
    }
    let ensured = identity::ensure_identity(meta, user.as_str(), org.as_str(), None, now).await?;
    if ensured.created_user {
        let token = identity::create_token(meta, user.as_str(), "bootstrap", now).await?;
        return Ok(Outcome::Created(token));
    }
    Ok(Outcome::Existing)
}
