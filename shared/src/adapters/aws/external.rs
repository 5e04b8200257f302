//! The external-secrets port on AWS: Secrets Manager `GetSecretValue` and Parameter Store
//! `GetParameter`, signed with the credentials the environment's `aws-login` gave and sent to
//! the region the definition names. The function's own role is never used for these reads.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::config::{Credentials, Region, SharedCredentialsProvider};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use super::readable;
use crate::ports::external::{AwsLogin, ExternalError, ExternalSecrets, Parameter, SecretVersion};

/// Reads secrets and parameters in the team's AWS account.
#[derive(Debug, Clone)]
pub struct AwsExternal {
    /// The process's SDK configuration (HTTP client, retries, timeouts); credentials and
    /// region are replaced per call.
    sdk: SdkConfig,
    /// An AWS-compatible server's endpoint (moto, LocalStack); None for AWS itself.
    endpoint: Option<String>,
}

impl AwsExternal {
    pub fn new(sdk: SdkConfig, endpoint: Option<String>) -> AwsExternal {
        AwsExternal { sdk, endpoint }
    }

    fn credentials(login: &AwsLogin) -> SharedCredentialsProvider {
        let token = Some(login.session_token.clone()).filter(|t| !t.is_empty());
        SharedCredentialsProvider::new(Credentials::new(
            login.access_key_id.clone(),
            login.secret_access_key.clone(),
            token,
            None,
            "esc-aws-login",
        ))
    }
}

/// Not found, refused, or anything else (retryable).
fn classify<E, R>(what: &str, err: SdkError<E, R>) -> ExternalError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or_default().to_string();
    match code.as_str() {
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
            ExternalError::NotFound(what.to_string())
        }
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException" => ExternalError::Denied(format!("{what} ({code})")),
        _ => ExternalError::Unavailable(format!("{what}: {}", readable(&err))),
    }
}

#[async_trait]
impl ExternalSecrets for AwsExternal {
    async fn aws_secret(
        &self,
        login: &AwsLogin,
        region: &str,
        secret_id: &str,
        version: &SecretVersion,
    ) -> Result<String, ExternalError> {
        let mut b = aws_sdk_secretsmanager::config::Builder::from(&self.sdk)
            .credentials_provider(Self::credentials(login))
            .region(Region::new(region.to_string()));
        b.set_endpoint_url(self.endpoint.clone());
        let client = aws_sdk_secretsmanager::Client::from_conf(b.build());
        let out = client
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version.version_id.clone())
            .set_version_stage(version.version_stage.clone())
            .send()
            .await
            .map_err(|e| classify(&format!("secret {secret_id:?}"), e))?;
        match (out.secret_string, out.secret_binary) {
            (Some(s), _) => Ok(s),
            (None, Some(bytes)) => String::from_utf8(bytes.into_inner())
                .map_err(|_| ExternalError::NotFound(format!("a text value of {secret_id:?}"))),
            (None, None) => Err(ExternalError::NotFound(format!("a value of {secret_id:?}"))),
        }
    }

    async fn aws_parameter(
        &self,
        login: &AwsLogin,
        region: &str,
        name: &str,
        decrypt: bool,
    ) -> Result<Parameter, ExternalError> {
        let mut b = aws_sdk_ssm::config::Builder::from(&self.sdk)
            .credentials_provider(Self::credentials(login))
            .region(aws_sdk_ssm::config::Region::new(region.to_string()));
        b.set_endpoint_url(self.endpoint.clone());
        let client = aws_sdk_ssm::Client::from_conf(b.build());
        let out = client
            .get_parameter()
            .name(name)
            .with_decryption(decrypt)
            .send()
            .await
            .map_err(|e| classify(&format!("parameter {name:?}"), e))?;
        let Some(p) = out.parameter else {
            return Err(ExternalError::NotFound(format!("parameter {name:?}")));
        };
        let secure = matches!(p.r#type, Some(aws_sdk_ssm::types::ParameterType::SecureString));
        Ok(Parameter { value: p.value.unwrap_or_default(), secure })
    }
}
