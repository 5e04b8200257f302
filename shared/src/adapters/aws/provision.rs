//! Provisioning for `init` and tests: creates the table, bucket, queues and key when missing
//! (Lambda functions never call it; in AWS the SAM template owns these resources).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_sqs::types::QueueAttributeName;

use super::{readable, AwsConfig, Clients, Service};
use crate::adapters::AdapterError;
use crate::ports::metadata::{PARTITION_KEY_ATTR, SORT_KEY_ATTR, TTL_ATTR};
use crate::ports::queue::QueueSpec;

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
