//! External-secrets port: values an environment reads at open time from systems the team
//! already keeps secrets in (ESC's `fn::open::aws-secrets` and `fn::open::aws-parameter-store`).
//! On AWS the adapter calls Secrets Manager and Parameter Store with the credentials the
//! environment's own `aws-login` gave (not the function's role); locally, the embedded adapter
//! serves a stand-in file, so an environment written for AWS opens on a laptop too.

use async_trait::async_trait;

/// AWS credentials, as `fn::open::aws-login` gives them.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsLogin {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Empty for long-lived keys.
    pub session_token: String,
}

impl std::fmt::Debug for AwsLogin {
    // Never the secret parts: a login may end up in a log line through an error's context.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsLogin").field("access_key_id", &self.access_key_id).finish()
    }
}

/// Which version of a Secrets Manager secret to read (neither: the current one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretVersion {
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
}

/// A Parameter Store parameter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub value: String,
    /// A `SecureString` (its value is a secret in the environment).
    pub secure: bool,
}

/// Errors of the external-secrets port; each becomes a diagnostic of the value that asked.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// No such secret or parameter (or version of it).
    #[error("not found: {0}")]
    NotFound(String),
    /// The credentials were refused, or may not read it.
    #[error("access denied: {0}")]
    Denied(String),
    /// The service could not be reached or failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The function was built without this port (see `adapters::undeclared`).
    #[error("{0}")]
    Undeclared(String),
}

/// Where `aws-secrets` and `aws-parameter-store` read from.
#[async_trait]
pub trait ExternalSecrets: Send + Sync {
    /// The string value of secret `secret_id` (a name or an ARN) in `region`.
    async fn aws_secret(
        &self,
        login: &AwsLogin,
        region: &str,
        secret_id: &str,
        version: &SecretVersion,
    ) -> Result<String, ExternalError>;

    /// Parameter `name` (`name`, `name:version` or `name:label`) in `region`; a
    /// `SecureString` comes decrypted only when `decrypt` is set.
    async fn aws_parameter(
        &self,
        login: &AwsLogin,
        region: &str,
        name: &str,
        decrypt: bool,
    ) -> Result<Parameter, ExternalError>;
}
