//! The startup check: every service answers and every resource exists, with one readable line
//! per problem (the emulator refuses to start on any).

use std::time::Duration;

use super::{readable, AwsConfig, Clients, Service};

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
