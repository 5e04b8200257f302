//! The local emulator: one process that serves the whole route table over HTTP with the same
//! dispatcher the Lambda functions use, and runs the whole job table with the same handlers
//! ([`jobs`]), on the embedded store or on AWS-compatible endpoints.

pub mod archive;
pub mod bells;
pub mod bootstrap;
pub mod jobs;
pub mod launcher;
pub mod runner;
pub mod server;
pub mod sockets;

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

/// What the emulator serves beside the route table: presigned blob URLs (embedded backend)
/// and the event stream's WebSocket sockets.
#[derive(Clone)]
pub struct Served {
    /// Checks presigned blob URLs (embedded backend only).
    pub verifier: Option<Arc<embedded::PresignVerifier>>,
    /// The sockets of the WebSocket server: the app's push port.
    pub hub: Arc<embedded::Hub>,
}

/// Builds the ports for the configured backend. `public_url` is where presigned embedded blob
/// URLs point (this emulator). On either backend the push port is the emulator's own hub: it
/// serves the WebSocket itself, as API Gateway does on AWS.
pub async fn build_app(cfg: &Config, public_url: &str) -> Result<(Arc<App>, Served), AdapterError> {
    let hub = Arc::new(embedded::Hub::default());
    let (mut ports, verifier) = match cfg.backend {
        Backend::Embedded => {
            let ecfg = embedded::EmbeddedConfig {
                data_dir: cfg.data_dir.clone(),
                public_url: public_url.to_string(),
                queues: stackhouse::ports::queue::default_queues(),
            };
            let (ports, verifier) = embedded::open(&ecfg)?;
            (ports, Some(verifier))
        }
        Backend::Aws => (aws::connect(&aws_config(cfg)).await?, None),
    };
    ports.push = hub.clone();
    // Sends ring their queue's consumer awake (`bells`).
    ports.queue = Arc::new(bells::Ringing(ports.queue));
    Ok((App::new(ports, cfg.settings.clone()), Served { verifier, hub }))
}

/// The AWS adapter settings: from the config or the environment, with the endpoint flag applied.
pub fn aws_config(cfg: &Config) -> aws::AwsConfig {
    let mut acfg = cfg.aws.clone().unwrap_or_else(aws::AwsConfig::from_env);
    if cfg.aws_endpoint_url.is_some() {
        acfg.endpoint_url = cfg.aws_endpoint_url.clone();
    }
    acfg
}
