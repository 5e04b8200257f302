//! The external-secrets port on the embedded backend: a stand-in for Secrets Manager and
//! Parameter Store, read from one JSON file in the data directory (`aws-standin.json`), so an
//! environment that reads `aws-secrets` or `aws-parameter-store` opens on a laptop with the
//! values a developer puts there. It is read on every call: edits apply without a restart.
//!
//! ```json
//! {"us-east-1": {
//!   "secrets": {"api-key": "k-123"},
//!   "parameters": {"/app/url": "https://example.com",
//!                  "/app/token": {"value": "t-456", "secure": true}}}}
//! ```
//!
//! Like AWS, it wants credentials (any non-empty access key id), and it keeps one version of
//! each value (`AWSCURRENT`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use crate::ports::external::{AwsLogin, ExternalError, ExternalSecrets, Parameter, SecretVersion};

/// The stand-in file's name in the data directory.
pub const STANDIN_FILE: &str = "aws-standin.json";

/// What a SecureString read without `decrypt` gives (AWS gives its ciphertext).
const NOT_DECRYPTED: &str = "(a SecureString: read it with decrypt: true)";

/// Serves secrets and parameters from a JSON file.
#[derive(Debug, Clone)]
pub struct StandIn {
    path: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Region {
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    parameters: BTreeMap<String, StoredParameter>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StoredParameter {
    Plain(String),
    Typed {
        value: String,
        #[serde(default)]
        secure: bool,
    },
}

impl StandIn {
    pub fn new(path: PathBuf) -> StandIn {
        StandIn { path }
    }

    async fn region(&self, login: &AwsLogin, region: &str) -> Result<Region, ExternalError> {
        if login.access_key_id.is_empty() || login.secret_access_key.is_empty() {
            return Err(ExternalError::Denied("the login has no access key".into()));
        }
        let bytes = match tokio::fs::read(&self.path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Region::default()),
            Err(e) => {
                return Err(ExternalError::Unavailable(format!("{}: {e}", self.path.display())))
            }
        };
        let mut regions: BTreeMap<String, Region> = serde_json::from_slice(&bytes)
            .map_err(|e| ExternalError::Unavailable(format!("{}: {e}", self.path.display())))?;
        Ok(regions.remove(region).unwrap_or_default())
    }
}

#[async_trait]
impl ExternalSecrets for StandIn {
    async fn aws_secret(
        &self,
        login: &AwsLogin,
        region: &str,
        secret_id: &str,
        version: &SecretVersion,
    ) -> Result<String, ExternalError> {
        let current = version.version_id.is_none()
            && version.version_stage.as_deref().is_none_or(|s| s == "AWSCURRENT");
        let mut r = self.region(login, region).await?;
        match r.secrets.remove(secret_id) {
            Some(v) if current => Ok(v),
            _ => Err(ExternalError::NotFound(format!("secret {secret_id:?} in {region}"))),
        }
    }

    async fn aws_parameter(
        &self,
        login: &AwsLogin,
        region: &str,
        name: &str,
        decrypt: bool,
    ) -> Result<Parameter, ExternalError> {
        let mut r = self.region(login, region).await?;
        let (value, secure) = match r.parameters.remove(name) {
            Some(StoredParameter::Plain(v)) => (v, false),
            Some(StoredParameter::Typed { value, secure }) => (value, secure),
            None => return Err(ExternalError::NotFound(format!("parameter {name:?} in {region}"))),
        };
        let value = if secure && !decrypt { NOT_DECRYPTED.to_string() } else { value };
        Ok(Parameter { value, secure })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> AwsLogin {
        AwsLogin {
            access_key_id: "AKIA".into(),
            secret_access_key: "s".into(),
            session_token: String::new(),
        }
    }

    #[tokio::test]
    async fn serves_the_file_by_region_and_refuses_what_it_lacks() {
        let dir =
            std::env::temp_dir().join(format!("stackhouse-standin-{}", crate::service::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(STANDIN_FILE);
        let s = StandIn::new(path.clone());
        let none = SecretVersion::default();
        let missing = s.aws_secret(&login(), "us-east-1", "k", &none).await;
        assert!(matches!(missing, Err(ExternalError::NotFound(_))), "no file: {missing:?}");
        std::fs::write(
            &path,
            r#"{"us-east-1": {"secrets": {"k": "v"},
                "parameters": {"/p": "plain", "/s": {"value": "hidden", "secure": true}}}}"#,
        )
        .unwrap();
        assert_eq!(s.aws_secret(&login(), "us-east-1", "k", &none).await.unwrap(), "v");
        let other_region = s.aws_secret(&login(), "eu-west-1", "k", &none).await;
        assert!(matches!(other_region, Err(ExternalError::NotFound(_))));
        let old = SecretVersion { version_stage: Some("AWSPREVIOUS".into()), version_id: None };
        assert!(matches!(
            s.aws_secret(&login(), "us-east-1", "k", &old).await,
            Err(ExternalError::NotFound(_))
        ));
        let p = s.aws_parameter(&login(), "us-east-1", "/p", false).await.unwrap();
        assert_eq!(p, Parameter { value: "plain".into(), secure: false });
        let sealed = s.aws_parameter(&login(), "us-east-1", "/s", false).await.unwrap();
        assert!(sealed.secure && sealed.value != "hidden", "{sealed:?}");
        let open = s.aws_parameter(&login(), "us-east-1", "/s", true).await.unwrap();
        assert_eq!(open.value, "hidden");
        let anonymous = AwsLogin { access_key_id: String::new(), ..login() };
        assert!(matches!(
            s.aws_secret(&anonymous, "us-east-1", "k", &none).await,
            Err(ExternalError::Denied(_))
        ));
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            s.aws_secret(&login(), "us-east-1", "k", &none).await,
            Err(ExternalError::Unavailable(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
