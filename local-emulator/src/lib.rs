//! The local emulator: one process that serves the whole route table over HTTP with the same
//! dispatcher the Lambda functions use, and runs the whole job table with the same handlers
//! ([`jobs`]), on the embedded store or on AWS-compatible endpoints.

pub mod archive;
pub mod bootstrap;
pub mod jobs;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use stackhouse::adapters::{aws, embedded, AdapterError};
use stackhouse::app::{App, Settings};

/// Which adapter set to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// SQLite + files under the data directory; nothing else needed.
    Embedded,
    /// DynamoDB, S3, SQS and KMS (or compatible endpoints).
    Aws,
}

/// Everything needed to start the emulator.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Data directory of the embedded backend.
    pub data_dir: PathBuf,
    /// Adapter set.
    pub backend: Backend,
    /// Endpoint for every AWS service (LocalStack, MinIO, moto), if not real AWS.
    pub aws_endpoint_url: Option<String>,
    /// AWS resource names; `None` reads them from the environment.
    pub aws: Option<aws::AwsConfig>,
    /// Limits.
    pub settings: Settings,
}

/// Builds the ports for the configured backend. `public_url` is where presigned embedded blob
/// URLs point (this emulator).
pub async fn build_app(
    cfg: &Config,
    public_url: &str,
) -> Result<(Arc<App>, Option<Arc<embedded::PresignVerifier>>), AdapterError> {
    match cfg.backend {
        Backend::Embedded => {
            let ecfg = embedded::EmbeddedConfig {
                data_dir: cfg.data_dir.clone(),
                public_url: public_url.to_string(),
                queues: stackhouse::ports::queue::default_queues(),
            };
            let (ports, verifier) = embedded::open(&ecfg)?;
            Ok((App::new(ports, cfg.settings.clone()), Some(verifier)))
        }
        Backend::Aws => {
            let acfg = aws_config(cfg);
            let ports = aws::connect(&acfg).await?;
            Ok((App::new(ports, cfg.settings.clone()), None))
        }
    }
}

/// The AWS adapter settings: from the config or the environment, with the endpoint flag applied.
pub fn aws_config(cfg: &Config) -> aws::AwsConfig {
    let mut acfg = cfg.aws.clone().unwrap_or_else(aws::AwsConfig::from_env);
    if cfg.aws_endpoint_url.is_some() {
        acfg.endpoint_url = cfg.aws_endpoint_url.clone();
    }
    acfg
}
