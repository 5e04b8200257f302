//! AWS adapters: DynamoDB, S3, SQS and KMS through the official SDKs. Any AWS-compatible
//! endpoint works (moto, LocalStack, MinIO) when an endpoint URL is given.

pub mod dynamo;
pub mod kms;
pub mod s3;
pub mod sqs;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::adapters::undeclared::Undeclared;
use crate::adapters::AdapterError;
use crate::ports::metadata::TTL_ATTR;
use crate::ports::metadata::{PARTITION_KEY_ATTR, SORT_KEY_ATTR};
use crate::ports::queue::{default_queues, QueueSpec};
use crate::ports::{Access, Needs};
use crate::ports::{BlobStore, KeyService, MetadataStore, Ports, Queue};

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

/// Every port, read and write: what [`connect`] builds.
const EVERY_PORT: Needs =
    Needs { meta: Access::Write, blobs: Access::Write, queue: Access::Write, keys: Access::Write };

/// Builds the AWS adapter set with all four ports (the emulator, tests). Makes no network call
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
    let uses = |access: Access| !matches!(access, Access::None);
    let meta: Build<dyn MetadataStore> =
        if uses(needs.meta) { dynamo_meta } else { undeclared_meta };
    let blobs: Build<dyn BlobStore> = if uses(needs.blobs) { s3_blobs } else { undeclared_blobs };
    let queue: Build<dyn Queue> = if uses(needs.queue) { sqs_queue } else { undeclared_queue };
    let keys: Build<dyn KeyService> = if uses(needs.keys) { kms_keys } else { undeclared_keys };
    let cfg = cfg.clone();
    async move {
        let unset: Vec<&str> = [
            (uses(needs.meta) && cfg.table.is_empty(), "table"),
            (uses(needs.blobs) && cfg.bucket.is_empty(), "bucket"),
            (uses(needs.keys) && cfg.kms_key_id.is_empty(), "KMS key id"),
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
        })
    }
}

/// Checks once that every service answers and every resource exists, each service within
/// `timeout`, and returns one line per problem (empty: all fine). Each line names the service,
/// its endpoint and what failed, so that a misconfigured endpoint or a missing `init` is
/// reported at startup instead of on the first request.
pub async fn check(cfg: &AwsConfig, timeout: Duration) -> Vec<String> {
    let c = Clients::new(cfg).await;
    let bounded = |service: Service, fut| bounded_check(cfg, service, timeout, fut);
    let dynamo = bounded(
        Service::DynamoDb,
        Box::pin(async {
            use aws_sdk_dynamodb::operation::describe_table::DescribeTableError as E;
            let r = c.dynamo.describe_table().table_name(&cfg.table).send().await;
            r.err().map(|e| {
                let table = &cfg.table;
                classify(cfg, Service::DynamoDb, "DescribeTable", e, |e| {
                    matches!(e, E::ResourceNotFoundException(_)).then(|| format!("table {table}"))
                })
            })
        }),
    );
    let s3 = bounded(
        Service::S3,
        Box::pin(async {
            use aws_sdk_s3::operation::head_bucket::HeadBucketError as E;
            let r = c.s3.head_bucket().bucket(&cfg.bucket).send().await;
            r.err().map(|e| {
                let bucket = &cfg.bucket;
                classify(cfg, Service::S3, "HeadBucket", e, |e| {
                    matches!(e, E::NotFound(_)).then(|| format!("bucket {bucket}"))
                })
            })
        }),
    );
    let sqs = bounded(
        Service::Sqs,
        Box::pin(async {
            use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError as E;
            let mut names = Vec::new();
            for spec in &cfg.queues {
                names.push(format!("{}{}", cfg.queue_prefix, spec.name));
                names.push(format!("{}{}", cfg.queue_prefix, spec.dlq_name()));
            }
            for name in names {
                if let Err(e) = c.sqs.get_queue_url().queue_name(&name).send().await {
                    return Some(classify(cfg, Service::Sqs, "GetQueueUrl", e, |e| {
                        matches!(e, E::QueueDoesNotExist(_)).then(|| format!("queue {name}"))
                    }));
                }
            }
            None
        }),
    );
    let kms = bounded(
        Service::Kms,
        Box::pin(async {
            use aws_sdk_kms::operation::describe_key::DescribeKeyError as E;
            let r = c.kms.describe_key().key_id(&cfg.kms_key_id).send().await;
            r.err().map(|e| {
                let key = &cfg.kms_key_id;
                classify(cfg, Service::Kms, "DescribeKey", e, |e| {
                    matches!(e, E::NotFoundException(_)).then(|| format!("key {key}"))
                })
            })
        }),
    );
    let (a, b, c, d) = tokio::join!(dynamo, s3, sqs, kms);
    [a, b, c, d].into_iter().flatten().collect()
}

type CheckFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + 'a>>;

async fn bounded_check(
    cfg: &AwsConfig,
    service: Service,
    timeout: Duration,
    fut: CheckFuture<'_>,
) -> Option<String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(problem) => problem,
        Err(_) => Some(format!(
            "{} at {}: unreachable (no answer within {}s)",
            service.name(),
            cfg.target(service),
            timeout.as_secs_f32()
        )),
    }
}

/// The innermost error of a chain, e.g. "Connection refused (os error 111)": what an operator
/// needs to know about an unreachable endpoint, without the SDK's nested debug output.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// One line for a failed startup check: unreachable, resource missing, or anything else.
fn classify<E, R>(
    cfg: &AwsConfig,
    service: Service,
    op: &str,
    err: aws_sdk_s3::error::SdkError<E, R>,
    missing: impl FnOnce(&E) -> Option<String>,
) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let at = format!("{} at {}", service.name(), cfg.target(service));
    let what = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return format!("{at}: unreachable ({op}: {})", root_cause(&err));
        }
        SdkError::ServiceError(e) => missing(e.err()),
        _ => None,
    };
    match what {
        Some(what) => format!(
            "{at}: {what} does not exist; create it with `local-emulator --backend aws init` \
             (same endpoint settings)"
        ),
        None => format!("{at}: {op} failed: {}", readable(&err)),
    }
}

/// Creates whatever is missing (table with TTL, bucket, queues with dead-letter queues and
/// redrive policies, KMS key and alias) and returns one human-readable line per resource
/// saying whether it was created or found. Safe to run again and again.
pub async fn provision(cfg: &AwsConfig) -> Result<Vec<String>, AdapterError> {
    let c = Clients::new(cfg).await;
    let mut lines = Vec::new();
    provision_table(cfg, &c.dynamo, &mut lines).await?;
    provision_bucket(cfg, &c.s3, &mut lines).await?;
    for spec in &cfg.queues {
        provision_queue(cfg, &c.sqs, spec, &mut lines).await?;
    }
    provision_key(cfg, &c.kms, &mut lines).await?;
    Ok(lines)
}

/// How long `provision` waits for a new table to become ACTIVE (real AWS: seconds to a minute).
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

async fn provision_table(
    cfg: &AwsConfig,
    client: &aws_sdk_dynamodb::Client,
    lines: &mut Vec<String>,
) -> Result<(), AdapterError> {
    use aws_sdk_dynamodb::operation::create_table::CreateTableError;
    use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;

    let fail = |what: &str, e: String| {
        AdapterError::new(
            "dynamodb",
            format!("{what} table {} at {}: {e}", cfg.table, cfg.target(Service::DynamoDb)),
        )
    };
    let build = |e: aws_smithy_types::error::operation::BuildError| fail("building", e.to_string());

    let exists = match client.describe_table().table_name(&cfg.table).send().await {
        Ok(_) => true,
        Err(e) => match e.into_service_error() {
            DescribeTableError::ResourceNotFoundException(_) => false,
            other => return Err(fail("describing", readable(&other))),
        },
    };
    if exists {
        lines.push(format!("dynamodb: found table {}", cfg.table));
    } else {
        let created = client
            .create_table()
            .table_name(&cfg.table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PARTITION_KEY_ATTR)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(SORT_KEY_ATTR)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(PARTITION_KEY_ATTR)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(SORT_KEY_ATTR)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(build)?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {
                lines.push(format!("dynamodb: created table {} (pk S, sk S, on-demand)", cfg.table))
            }
            // Someone else provisioning at the same time: fine, it is there now.
            Err(e) => match e.into_service_error() {
                CreateTableError::ResourceInUseException(_) => {
                    lines.push(format!("dynamodb: found table {}", cfg.table))
                }
                other => return Err(fail("creating", readable(&other))),
            },
        }
    }

    // TTL can only be enabled on an ACTIVE table.
    let deadline = Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(&cfg.table)
            .send()
            .await
            .map_err(|e| fail("describing", readable(&e)))?;
        let status = out.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            break;
        }
        if Instant::now() >= deadline {
            return Err(fail(
                "waiting for",
                format!("still {status:?} after {}s", TABLE_ACTIVE_TIMEOUT.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let ttl = client
        .describe_time_to_live()
        .table_name(&cfg.table)
        .send()
        .await
        .map_err(|e| fail("reading TTL of", readable(&e)))?;
    let desc = ttl.time_to_live_description();
    let status = desc.and_then(|d| d.time_to_live_status());
    let attr = desc.and_then(|d| d.attribute_name());
    let enabled = matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if enabled && attr == Some(TTL_ATTR) {
        lines.push(format!("dynamodb: TTL on attribute {TTL_ATTR} already enabled"));
    } else if enabled {
        // Changing the TTL attribute needs disabling first, which takes up to an hour on AWS:
        // leave that decision to a human.
        return Err(fail(
            "checking TTL of",
            format!("TTL is enabled on attribute {attr:?}, expected {TTL_ATTR}"),
        ));
    } else {
        client
            .update_time_to_live()
            .table_name(&cfg.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTR)
                    .enabled(true)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(|e| fail("enabling TTL on", readable(&e)))?;
        lines.push(format!("dynamodb: enabled TTL on attribute {TTL_ATTR}"));
    }
    Ok(())
}

async fn provision_bucket(
    cfg: &AwsConfig,
    client: &aws_sdk_s3::Client,
    lines: &mut Vec<String>,
) -> Result<(), AdapterError> {
    use aws_sdk_s3::operation::create_bucket::CreateBucketError;
    use aws_sdk_s3::operation::head_bucket::HeadBucketError;
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

    let fail = |what: &str, e: String| {
        AdapterError::new(
            "s3",
            format!("{what} bucket {} at {}: {e}", cfg.bucket, cfg.target(Service::S3)),
        )
    };
    match client.head_bucket().bucket(&cfg.bucket).send().await {
        Ok(_) => {
            lines.push(format!("s3: found bucket {}", cfg.bucket));
            return Ok(());
        }
        Err(e) => match e.into_service_error() {
            HeadBucketError::NotFound(_) => {}
            other => return Err(fail("checking", readable(&other))),
        },
    }
    let mut req = client.create_bucket().bucket(&cfg.bucket);
    // us-east-1 is the one region that rejects an explicit location constraint.
    if let Some(region) = cfg.region.as_deref().filter(|r| *r != "us-east-1") {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => lines.push(format!("s3: created bucket {}", cfg.bucket)),
        Err(e) => match e.into_service_error() {
            CreateBucketError::BucketAlreadyOwnedByYou(_) => {
                lines.push(format!("s3: found bucket {}", cfg.bucket))
            }
            other => return Err(fail("creating", readable(&other))),
        },
    }
    Ok(())
}

/// How long a dead-lettered message is kept: SQS's maximum, so that an operator has two weeks
/// to look at it (the enqueue time of the original message carries over to the DLQ).
const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;

async fn provision_queue(
    cfg: &AwsConfig,
    client: &aws_sdk_sqs::Client,
    spec: &QueueSpec,
    lines: &mut Vec<String>,
) -> Result<(), AdapterError> {
    let dlq_name = format!("{}{}", cfg.queue_prefix, spec.dlq_name());
    let name = format!("{}{}", cfg.queue_prefix, spec.name);
    let fail = |what: &str, queue: &str, e: String| {
        AdapterError::new(
            "sqs",
            format!("{what} queue {queue} at {}: {e}", cfg.target(Service::Sqs)),
        )
    };

    let (dlq_url, created) =
        ensure_queue(client, &dlq_name).await.map_err(|e| fail("creating", &dlq_name, e))?;
    client
        .set_queue_attributes()
        .queue_url(&dlq_url)
        .attributes(QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECS.to_string())
        .send()
        .await
        .map_err(|e| fail("configuring", &dlq_name, readable(&e)))?;
    lines.push(format!("sqs: {} dead-letter queue {dlq_name}", verb(created)));

    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail("reading ARN of", &dlq_name, readable(&e)))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| fail("reading ARN of", &dlq_name, "no QueueArn returned".to_string()))?;

    let (url, created) =
        ensure_queue(client, &name).await.map_err(|e| fail("creating", &name, e))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": spec.max_receives,
    });
    // Set on found queues too, so that a changed QueueSpec takes effect on the next provision.
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            spec.visibility_timeout.as_secs().to_string(),
        )
        .send()
        .await
        .map_err(|e| fail("configuring", &name, readable(&e)))?;
    lines.push(format!(
        "sqs: {} queue {name} (visibility {}s, dead-lettered to {dlq_name} after {} receives)",
        verb(created),
        spec.visibility_timeout.as_secs(),
        spec.max_receives
    ));
    Ok(())
}

fn verb(created: bool) -> &'static str {
    if created {
        "created"
    } else {
        "found"
    }
}

/// Returns the queue's URL and whether it had to be created.
async fn ensure_queue(client: &aws_sdk_sqs::Client, name: &str) -> Result<(String, bool), String> {
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => return out.queue_url().map(|u| (u.to_string(), false)).ok_or_else(no_url),
        Err(e) => match e.into_service_error() {
            GetQueueUrlError::QueueDoesNotExist(_) => {}
            other => return Err(readable(&other)),
        },
    }
    // Attributes are set afterwards with SetQueueAttributes: CreateQueue fails on an existing
    // queue whose attributes differ, which would make a race between two provisioners fatal.
    let out = client.create_queue().queue_name(name).send().await.map_err(|e| readable(&e))?;
    out.queue_url().map(|u| (u.to_string(), true)).ok_or_else(no_url)
}

fn no_url() -> String {
    "no queue URL returned".to_string()
}

async fn provision_key(
    cfg: &AwsConfig,
    client: &aws_sdk_kms::Client,
    lines: &mut Vec<String>,
) -> Result<(), AdapterError> {
    use aws_sdk_kms::operation::create_alias::CreateAliasError;
    use aws_sdk_kms::operation::describe_key::DescribeKeyError;

    let fail = |what: &str, e: String| {
        AdapterError::new(
            "kms",
            format!("{what} key {} at {}: {e}", cfg.kms_key_id, cfg.target(Service::Kms)),
        )
    };
    match client.describe_key().key_id(&cfg.kms_key_id).send().await {
        Ok(_) => {
            lines.push(format!("kms: found key {}", cfg.kms_key_id));
            return Ok(());
        }
        Err(e) => match e.into_service_error() {
            DescribeKeyError::NotFoundException(_) if cfg.kms_key_id.starts_with("alias/") => {}
            // A key id or ARN cannot be chosen at creation, so a missing one is a config error.
            other => return Err(fail("looking up", readable(&other))),
        },
    }
    let created = client
        .create_key()
        .key_spec(KeySpec::SymmetricDefault)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .description("Stackhouse: wraps per-stack data keys for secrets")
        .send()
        .await
        .map_err(|e| fail("creating", readable(&e)))?;
    let key_id = created
        .key_metadata()
        .map(|m| m.key_id().to_string())
        .ok_or_else(|| fail("creating", "no key metadata returned".to_string()))?;
    client
        .enable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .map_err(|e| fail("enabling rotation of", readable(&e)))?;
    match client.create_alias().alias_name(&cfg.kms_key_id).target_key_id(&key_id).send().await {
        Ok(_) => lines.push(format!(
            "kms: created key {key_id} (symmetric, rotation enabled) with alias {}",
            cfg.kms_key_id
        )),
        // Lost a race with another provisioner: its key wins, ours is scheduled for deletion so
        // that it does not linger (and cost money) unreferenced.
        Err(e) => match e.into_service_error() {
            CreateAliasError::AlreadyExistsException(_) => {
                let _ = client
                    .schedule_key_deletion()
                    .key_id(&key_id)
                    .pending_window_in_days(7)
                    .send()
                    .await;
                lines.push(format!("kms: found key {}", cfg.kms_key_id));
            }
            other => return Err(fail("creating alias for", readable(&other))),
        },
    }
    Ok(())
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
