//! AWS adapters: DynamoDB, S3, SQS and KMS through the official SDKs. Any AWS-compatible
//! endpoint works (moto, LocalStack, MinIO) when an endpoint URL is given.

pub mod apigw;
mod check;
pub mod codebuild;
pub mod dynamo;
pub mod external;
pub mod kms;
mod provision;
pub mod s3;
pub mod sqs;

pub use check::check;
pub use provision::provision;

use std::future::Future;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::adapters::undeclared::Undeclared;
use crate::adapters::AdapterError;
use crate::ports::launcher::Launcher;
use crate::ports::queue::{default_queues, QueueSpec};
use crate::ports::{Access, Needs};
use crate::ports::{BlobStore, ExternalSecrets, KeyService, MetadataStore, Ports, Push, Queue};

pub use apigw::ApiGatewayPush;
pub use codebuild::CodeBuildLauncher;
pub use dynamo::DynamoMeta;
pub use kms::KmsKeys;
pub use s3::S3Blobs;
pub use sqs::SqsQueue;

/// Where the AWS adapters find their resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Endpoint of an AWS-compatible server (moto, LocalStack…); None for real AWS.
    pub endpoint_url: Option<String>,
    /// Region; None lets the SDK's default chain decide.
    pub region: Option<String>,
    /// DynamoDB table (keys `pk`/`sk`).
    pub table: String,
    /// S3 bucket.
    pub bucket: String,
    /// KMS key: key id, key ARN or alias (`alias/stackhouse`).
    pub kms_key_id: String,
    /// Prefix of every SQS queue name: logical queue `jobs` is `<prefix>jobs`.
    pub queue_prefix: String,
    /// The queues `provision` creates (each with a dead-letter queue).
    pub queues: Vec<QueueSpec>,
    /// Per-service endpoints (`AWS_ENDPOINT_URL_S3`…): each wins over `endpoint_url` for its
    /// service, so S3 can live on MinIO while the rest is on LocalStack.
    pub service_endpoints: ServiceEndpoints,
    /// The WebSocket API stage's URL, where its management API answers
    /// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`): only the functions
    /// that push to event-stream clients use it.
    pub websocket_endpoint: String,
    /// The CodeBuild project whose builds run deployments (`STACKHOUSE_RUNNER_PROJECT`): only
    /// `job-deployment-start` uses it.
    pub runner_project: String,
}

/// The four AWS services Stackhouse uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// DynamoDB (metadata).
    DynamoDb,
    /// S3 (blobs).
    S3,
    /// SQS (job queues).
    Sqs,
    /// KMS (secrets keys).
    Kms,
}

impl Service {
    /// All four, in the order startup checks report them.
    pub const ALL: [Service; 4] = [Service::DynamoDb, Service::S3, Service::Sqs, Service::Kms];

    /// Lowercase name, as in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Service::DynamoDb => "dynamodb",
            Service::S3 => "s3",
            Service::Sqs => "sqs",
            Service::Kms => "kms",
        }
    }

    /// The SDK's standard service-specific variable, e.g. `AWS_ENDPOINT_URL_S3`.
    pub fn endpoint_var(self) -> &'static str {
        match self {
            Service::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
            Service::S3 => "AWS_ENDPOINT_URL_S3",
            Service::Sqs => "AWS_ENDPOINT_URL_SQS",
            Service::Kms => "AWS_ENDPOINT_URL_KMS",
        }
    }
}

/// Service-specific endpoint overrides; `None` falls back to [`AwsConfig::endpoint_url`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEndpoints {
    /// DynamoDB endpoint.
    pub dynamodb: Option<String>,
    /// S3 endpoint.
    pub s3: Option<String>,
    /// SQS endpoint.
    pub sqs: Option<String>,
    /// KMS endpoint.
    pub kms: Option<String>,
}

impl ServiceEndpoints {
    /// The override for one service.
    pub fn get(&self, service: Service) -> Option<&str> {
        match service {
            Service::DynamoDb => self.dynamodb.as_deref(),
            Service::S3 => self.s3.as_deref(),
            Service::Sqs => self.sqs.as_deref(),
            Service::Kms => self.kms.as_deref(),
        }
    }

    /// Reads the four `AWS_ENDPOINT_URL_<SERVICE>` variables through `var` (empty = unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> ServiceEndpoints {
        let get = |s: Service| var(s.endpoint_var()).filter(|v| !v.trim().is_empty());
        ServiceEndpoints {
            dynamodb: get(Service::DynamoDb),
            s3: get(Service::S3),
            sqs: get(Service::Sqs),
            kms: get(Service::Kms),
        }
    }
}

impl AwsConfig {
    /// Reads `STACKHOUSE_TABLE`, `STACKHOUSE_BUCKET`, `STACKHOUSE_KMS_KEY_ID`,
    /// `STACKHOUSE_QUEUE_PREFIX`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_{S3,DYNAMODB,SQS,KMS}`
    /// and `AWS_REGION` from the process environment, with defaults for all.
    pub fn from_env() -> AwsConfig {
        AwsConfig::read(&crate::config::Env::process())
    }

    /// As [`AwsConfig::from_env`], from `env`. Nothing here can fail to parse: names are
    /// names, and an endpoint nobody listens on is reported by the readiness check.
    pub fn read(env: &crate::config::Env<'_>) -> AwsConfig {
        let or = |name: &str| env.text_or_default(name).unwrap_or_default();
        AwsConfig {
            endpoint_url: env.text("AWS_ENDPOINT_URL"),
            region: env.text("AWS_REGION"),
            table: or("STACKHOUSE_TABLE"),
            bucket: or("STACKHOUSE_BUCKET"),
            kms_key_id: or("STACKHOUSE_KMS_KEY_ID"),
            queue_prefix: or("STACKHOUSE_QUEUE_PREFIX"),
            queues: default_queues(),
            service_endpoints: ServiceEndpoints::from_vars(|name| env.text(name)),
            websocket_endpoint: or("STACKHOUSE_WEBSOCKET_ENDPOINT"),
            runner_project: or("STACKHOUSE_RUNNER_PROJECT"),
        }
    }

    /// The endpoint `service` talks to: its own override, else the global one, else `None`
    /// (real AWS).
    pub fn endpoint(&self, service: Service) -> Option<&str> {
        self.service_endpoints.get(service).or(self.endpoint_url.as_deref())
    }

    /// Where requests to `service` go, for error messages.
    pub fn target(&self, service: Service) -> &str {
        self.endpoint(service).unwrap_or("AWS")
    }
}

/// Renders an SDK error with its whole source chain; the top-level `Display` of SDK errors is
/// often just "service error", which tells an operator nothing.
pub(crate) fn readable<E: std::error::Error>(err: &E) -> String {
    DisplayErrorContext(err).to_string()
}

/// Loads the shared SDK configuration. Credentials and (given a region) everything else are
/// resolved lazily, so this makes no network call.
/// Endpoints are set per service client (see [`dynamo_client`]), not here: an explicit global
/// endpoint on the loader would make the SDK ignore `AWS_ENDPOINT_URL_<SERVICE>`.
async fn sdk_config(cfg: &AwsConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// The DynamoDB client, with its effective endpoint (override, else global) set explicitly so
/// the resolution is ours and does not depend on the process environment.
fn dynamo_client(sdk: &SdkConfig, cfg: &AwsConfig) -> aws_sdk_dynamodb::Client {
    let mut b = aws_sdk_dynamodb::config::Builder::from(sdk);
    b.set_endpoint_url(cfg.endpoint(Service::DynamoDb).map(str::to_string));
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

/// The S3 client (endpoint as for [`dynamo_client`]).
fn s3_client(sdk: &SdkConfig, cfg: &AwsConfig) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(sdk);
    b.set_endpoint_url(cfg.endpoint(Service::S3).map(str::to_string));
    // Virtual-host addressing (`bucket.host`) does not resolve on moto, MinIO or
    // LocalStack endpoints such as 127.0.0.1, so custom endpoints use path style.
    b.set_force_path_style(Some(cfg.endpoint(Service::S3).is_some()));
    aws_sdk_s3::Client::from_conf(b.build())
}

/// The SQS client (endpoint as for [`dynamo_client`]).
fn sqs_client(sdk: &SdkConfig, cfg: &AwsConfig) -> aws_sdk_sqs::Client {
    let mut b = aws_sdk_sqs::config::Builder::from(sdk);
    b.set_endpoint_url(cfg.endpoint(Service::Sqs).map(str::to_string));
    aws_sdk_sqs::Client::from_conf(b.build())
}

/// The KMS client (endpoint as for [`dynamo_client`]).
fn kms_client(sdk: &SdkConfig, cfg: &AwsConfig) -> aws_sdk_kms::Client {
    let mut b = aws_sdk_kms::config::Builder::from(sdk);
    b.set_endpoint_url(cfg.endpoint(Service::Kms).map(str::to_string));
    aws_sdk_kms::Client::from_conf(b.build())
}

/// The four SDK clients, built from one configuration (startup checks and provisioning).
struct Clients {
    dynamo: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    kms: aws_sdk_kms::Client,
}

impl Clients {
    async fn new(cfg: &AwsConfig) -> Clients {
        let sdk = sdk_config(cfg).await;
        Clients {
            dynamo: dynamo_client(&sdk, cfg),
            s3: s3_client(&sdk, cfg),
            sqs: sqs_client(&sdk, cfg),
            kms: kms_client(&sdk, cfg),
        }
    }
}

/// Builds one port's adapter from the shared SDK configuration.
type Build<P> = fn(&SdkConfig, &AwsConfig) -> Arc<P>;

// One builder per port and adapter. A function binary refers only to the builders
// [`connect_for`] selects for its needs, so the others, and the SDK clients and adapter vtables
// only they refer to, are not linked into it.

fn dynamo_meta(sdk: &SdkConfig, cfg: &AwsConfig) -> Arc<dyn MetadataStore> {
    Arc::new(DynamoMeta::new(dynamo_client(sdk, cfg), cfg.table.clone()))
}

fn s3_blobs(sdk: &SdkConfig, cfg: &AwsConfig) -> Arc<dyn BlobStore> {
    Arc::new(S3Blobs::new(s3_client(sdk, cfg), cfg.bucket.clone()))
}

fn sqs_queue(sdk: &SdkConfig, cfg: &AwsConfig) -> Arc<dyn Queue> {
    Arc::new(SqsQueue::new(sqs_client(sdk, cfg), cfg.queue_prefix.clone()))
}

fn kms_keys(sdk: &SdkConfig, cfg: &AwsConfig) -> Arc<dyn KeyService> {
    Arc::new(KmsKeys::new(kms_client(sdk, cfg), cfg.kms_key_id.clone()))
}

fn apigw_push(sdk: &SdkConfig, cfg: &AwsConfig) -> Arc<dyn Push> {
    let mut b = aws_sdk_apigatewaymanagement::config::Builder::from(sdk);
    b.set_endpoint_url(Some(cfg.websocket_endpoint.clone()));
    Arc::new(ApiGatewayPush::new(aws_sdk_apigatewaymanagement::Client::from_conf(b.build())))
}

fn undeclared_push(_: &SdkConfig, _: &AwsConfig) -> Arc<dyn Push> {
    Arc::new(Undeclared { port: "push" })
}

/// Secrets Manager and Parameter Store, on the deployment's AWS-compatible server when there
/// is one (moto, LocalStack), else on AWS itself: the environment's login picks the account.
fn aws_external(sdk: &SdkConfig, cfg: &AwsConfig) -> Arc<dyn ExternalSecrets> {
    Arc::new(external::AwsExternal::new(sdk.clone(), cfg.endpoint_url.clone()))
}

fn undeclared_external(_: &SdkConfig, _: &AwsConfig) -> Arc<dyn ExternalSecrets> {
    Arc::new(Undeclared { port: "external" })
}

fn undeclared_meta(_: &SdkConfig, _: &AwsConfig) -> Arc<dyn MetadataStore> {
    Arc::new(Undeclared { port: "meta" })
}

fn undeclared_blobs(_: &SdkConfig, _: &AwsConfig) -> Arc<dyn BlobStore> {
    Arc::new(Undeclared { port: "blobs" })
}

fn undeclared_queue(_: &SdkConfig, _: &AwsConfig) -> Arc<dyn Queue> {
    Arc::new(Undeclared { port: "queue" })
}

fn undeclared_keys(_: &SdkConfig, _: &AwsConfig) -> Arc<dyn KeyService> {
    Arc::new(Undeclared { port: "keys" })
}

/// A blob store on another bucket than the deployment's, with the same endpoint and
/// credentials: where `admin export --to s3://bucket/prefix` writes.
pub async fn blobs_in_bucket(cfg: &AwsConfig, bucket: &str) -> Arc<dyn BlobStore> {
    let sdk = sdk_config(cfg).await;
    Arc::new(S3Blobs::new(s3_client(&sdk, cfg), bucket))
}

/// Every port, read and write: what [`connect`] builds.
/// The push port stays undeclared: the emulator (the only caller) serves the WebSocket itself
/// and puts its own sockets' hub there.
const EVERY_PORT: Needs = Needs {
    meta: Access::Write,
    blobs: Access::Write,
    queue: Access::Write,
    keys: Access::Write,
    push: Access::None,
    external: Access::Read,
    // The emulator starts its runners itself (local processes), on either backend.
    launch: Access::None,
};

/// Builds the AWS adapter set with the four storage ports (the emulator, tests). Makes no network call
/// (it runs at cold start); a missing or unreachable resource shows up on first use as an
/// `Unavailable` error of that port.
pub async fn connect(cfg: &AwsConfig) -> Result<Ports, AdapterError> {
    connect_for(EVERY_PORT, cfg).await
}

/// Builds the AWS adapters of the ports `needs` uses (any access other than `Access::None`);
/// the others get an [`Undeclared`] adapter whose every call fails with an error naming the
/// port. Makes no network call, like [`connect`].
///
/// This is what keeps a function binary small: the choice is made here, synchronously, and
/// this function is always inlined, so in a function's `main` (where `needs` is a field of the
/// route's or job's `static`, a constant) the untaken branches fold away, and with them the
/// only references to the unneeded SDK clients and adapters. The returned future only calls
/// the builders chosen here. Choosing inside the future, or through a non-inlined call, would
/// link all four SDKs again (docs/BENCHMARKS.md, "What unused adapters cost").
#[inline(always)]
pub fn connect_for(
    needs: Needs,
    cfg: &AwsConfig,
) -> impl Future<Output = Result<Ports, AdapterError>> + Send + 'static {
    // A macro rather than a closure or a helper function: a call is not inlined from this crate
    // into an unoptimised-dependency (dev) build of a function, and the choice must fold there
    // too (`.ci/link-guard`).
    macro_rules! uses {
        ($access:expr) => {
            !matches!($access, Access::None)
        };
    }
    let meta: Build<dyn MetadataStore> =
        if uses!(needs.meta) { dynamo_meta } else { undeclared_meta };
    let blobs: Build<dyn BlobStore> = if uses!(needs.blobs) { s3_blobs } else { undeclared_blobs };
    let queue: Build<dyn Queue> = if uses!(needs.queue) { sqs_queue } else { undeclared_queue };
    let keys: Build<dyn KeyService> = if uses!(needs.keys) { kms_keys } else { undeclared_keys };
    let push: Build<dyn Push> = if uses!(needs.push) { apigw_push } else { undeclared_push };
    let external: Build<dyn ExternalSecrets> =
        if uses!(needs.external) { aws_external } else { undeclared_external };
    let cfg = cfg.clone();
    async move {
        let unset: Vec<&str> = [
            (uses!(needs.meta) && cfg.table.is_empty(), "table"),
            (uses!(needs.blobs) && cfg.bucket.is_empty(), "bucket"),
            (uses!(needs.keys) && cfg.kms_key_id.is_empty(), "KMS key id"),
            (uses!(needs.push) && cfg.websocket_endpoint.is_empty(), "WebSocket endpoint"),
        ]
        .into_iter()
        .filter_map(|(missing, what)| missing.then_some(what))
        .collect();
        if !unset.is_empty() {
            return Err(AdapterError::new(
                "aws",
                format!("not configured (empty): {}", unset.join(", ")),
            ));
        }
        let sdk = sdk_config(&cfg).await;
        Ok(Ports {
            meta: meta(&sdk, &cfg),
            blobs: blobs(&sdk, &cfg),
            queue: queue(&sdk, &cfg),
            keys: keys(&sdk, &cfg),
            push: push(&sdk, &cfg),
            external: external(&sdk, &cfg),
        })
    }
}

/// The CodeBuild launcher of runners (on an AWS-compatible server when an endpoint is set).
fn codebuild_launcher(sdk: &SdkConfig, cfg: &AwsConfig) -> Arc<dyn Launcher> {
    let mut b = aws_sdk_codebuild::config::Builder::from(sdk);
    b.set_endpoint_url(cfg.endpoint_url.clone());
    let client = aws_sdk_codebuild::Client::from_conf(b.build());
    Arc::new(CodeBuildLauncher::new(client, cfg.runner_project.clone()))
}

/// The launcher of a function whose `needs` start runners (None for the others). As with
/// [`connect_for`], the choice is made here, outside the future and always inlined, so a
/// function that starts no runner does not link the CodeBuild SDK. Fails, naming the
/// variable, when the runner's project is not configured. Makes no network call.
#[inline(always)]
pub fn launcher_for(
    needs: Needs,
    cfg: &AwsConfig,
) -> impl Future<Output = Result<Option<Arc<dyn Launcher>>, AdapterError>> + Send + 'static {
    let build: Option<Build<dyn Launcher>> =
        if matches!(needs.launch, Access::None) { None } else { Some(codebuild_launcher) };
    let cfg = cfg.clone();
    async move {
        let Some(build) = build else { return Ok(None) };
        if cfg.runner_project.is_empty() {
            return Err(AdapterError::new(
                "aws",
                "not configured (empty): runner project (STACKHOUSE_RUNNER_PROJECT)",
            ));
        }
        Ok(Some(build(&sdk_config(&cfg).await, &cfg)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(global: Option<&str>, overrides: &[(&str, &str)]) -> AwsConfig {
        let vars: Vec<(String, String)> =
            overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AwsConfig {
            endpoint_url: global.map(str::to_string),
            region: Some("us-east-1".into()),
            table: "t".into(),
            bucket: "b".into(),
            kms_key_id: "alias/k".into(),
            queue_prefix: "p-".into(),
            queues: default_queues(),
            service_endpoints: ServiceEndpoints::from_vars(|name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            }),
            websocket_endpoint: String::new(),
            runner_project: String::new(),
        }
    }

    #[test]
    fn service_specific_endpoint_wins_over_the_global_one() {
        let c = cfg(Some("http://ls:4566"), &[("AWS_ENDPOINT_URL_S3", "http://minio:9000")]);
        assert_eq!(c.endpoint(Service::S3), Some("http://minio:9000"));
        for s in [Service::DynamoDb, Service::Sqs, Service::Kms] {
            assert_eq!(c.endpoint(s), Some("http://ls:4566"), "{s:?}");
        }
    }

    #[test]
    fn overrides_without_a_global_endpoint_leave_the_rest_on_aws() {
        let c = cfg(
            None,
            &[("AWS_ENDPOINT_URL_DYNAMODB", "http://moto:5000"), ("AWS_ENDPOINT_URL_KMS", " ")],
        );
        assert_eq!(c.endpoint(Service::DynamoDb), Some("http://moto:5000"));
        assert_eq!(c.endpoint(Service::Kms), None, "blank counts as unset");
        assert_eq!(c.endpoint(Service::S3), None);
        assert_eq!(c.target(Service::Sqs), "AWS");
    }

    #[test]
    fn each_service_reads_its_own_variable() {
        let c = cfg(
            None,
            &[
                ("AWS_ENDPOINT_URL_DYNAMODB", "http://d"),
                ("AWS_ENDPOINT_URL_S3", "http://s"),
                ("AWS_ENDPOINT_URL_SQS", "http://q"),
                ("AWS_ENDPOINT_URL_KMS", "http://k"),
            ],
        );
        let got: Vec<_> = Service::ALL.iter().map(|s| c.endpoint(*s)).collect();
        assert_eq!(got, [Some("http://d"), Some("http://s"), Some("http://q"), Some("http://k")]);
    }
}
