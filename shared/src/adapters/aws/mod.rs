//! AWS adapters: DynamoDB, S3, SQS and KMS through the official SDKs. Any AWS-compatible
//! endpoint works (moto, LocalStack, MinIO) when an endpoint URL is given.

pub mod dynamo;
pub mod kms;
pub mod s3;
pub mod sqs;

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

use crate::adapters::AdapterError;
use crate::ports::metadata::TTL_ATTR;
use crate::ports::queue::{default_queues, QueueSpec};
use crate::ports::Ports;

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
}

impl AwsConfig {
    /// Reads `STACKHOUSE_TABLE`, `STACKHOUSE_BUCKET`, `STACKHOUSE_KMS_KEY_ID`,
    /// `STACKHOUSE_QUEUE_PREFIX`, `AWS_ENDPOINT_URL` and `AWS_REGION`, with defaults for all.
    pub fn from_env() -> AwsConfig {
        // Empty values count as unset: SAM templates often pass "" for "not configured".
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        AwsConfig {
            endpoint_url: var("AWS_ENDPOINT_URL"),
            region: var("AWS_REGION"),
            table: var("STACKHOUSE_TABLE").unwrap_or_else(|| "stackhouse".to_string()),
            bucket: var("STACKHOUSE_BUCKET").unwrap_or_else(|| "stackhouse-data".to_string()),
            kms_key_id: var("STACKHOUSE_KMS_KEY_ID")
                .unwrap_or_else(|| "alias/stackhouse".to_string()),
            queue_prefix: var("STACKHOUSE_QUEUE_PREFIX")
                .unwrap_or_else(|| "stackhouse-".to_string()),
            queues: default_queues(),
        }
    }

    /// Where requests go, for error messages.
    fn target(&self) -> &str {
        self.endpoint_url.as_deref().unwrap_or("AWS")
    }
}

/// Renders an SDK error with its whole source chain; the top-level `Display` of SDK errors is
/// often just "service error", which tells an operator nothing.
pub(crate) fn readable<E: std::error::Error>(err: &E) -> String {
    DisplayErrorContext(err).to_string()
}

/// Loads the shared SDK configuration. Credentials and (given a region) everything else are
/// resolved lazily, so this makes no network call.
async fn sdk_config(cfg: &AwsConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = &cfg.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// The four SDK clients, built from one configuration.
struct Clients {
    dynamo: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    kms: aws_sdk_kms::Client,
}

impl Clients {
    async fn new(cfg: &AwsConfig) -> Clients {
        let sdk = sdk_config(cfg).await;
        // Virtual-host addressing (`bucket.host`) does not resolve on moto, MinIO or
        // LocalStack endpoints such as 127.0.0.1, so custom endpoints use path style.
        let s3_conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(cfg.endpoint_url.is_some())
            .build();
        Clients {
            dynamo: aws_sdk_dynamodb::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            kms: aws_sdk_kms::Client::new(&sdk),
        }
    }
}

/// Builds the AWS adapter set. Makes no network call (it runs at cold start); a missing or
/// unreachable resource shows up on first use as an `Unavailable` error of that port.
pub async fn connect(cfg: &AwsConfig) -> Result<Ports, AdapterError> {
    if cfg.table.is_empty() || cfg.bucket.is_empty() || cfg.kms_key_id.is_empty() {
        return Err(AdapterError::new(
            "aws",
            "table, bucket and KMS key id must all be configured",
        ));
    }
    let c = Clients::new(cfg).await;
    Ok(Ports {
        meta: Arc::new(DynamoMeta::new(c.dynamo, cfg.table.clone())),
        blobs: Arc::new(S3Blobs::new(c.s3, cfg.bucket.clone())),
        queue: Arc::new(SqsQueue::new(c.sqs, cfg.queue_prefix.clone())),
        keys: Arc::new(KmsKeys::new(c.kms, cfg.kms_key_id.clone())),
    })
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
            format!("{what} table {} at {}: {e}", cfg.table, cfg.target()),
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
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("sk")
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
        AdapterError::new("s3", format!("{what} bucket {} at {}: {e}", cfg.bucket, cfg.target()))
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
        AdapterError::new("sqs", format!("{what} queue {queue} at {}: {e}", cfg.target()))
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
        AdapterError::new("kms", format!("{what} key {} at {}: {e}", cfg.kms_key_id, cfg.target()))
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
