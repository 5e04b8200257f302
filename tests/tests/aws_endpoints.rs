//! Per-service endpoints and startup checks of the AWS adapters, against moto and a closed port.

use std::time::Duration;

use stackhouse::adapters::aws::{self, Service, ServiceEndpoints};
use stackhouse_tests::moto::MotoServer;

/// A URL nothing listens on: a port bound and then released.
fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn all(url: &str) -> ServiceEndpoints {
    ServiceEndpoints {
        dynamodb: Some(url.into()),
        s3: Some(url.into()),
        sqs: Some(url.into()),
        kms: Some(url.into()),
    }
}

#[tokio::test]
async fn service_endpoints_win_over_a_dead_global_endpoint() {
    let moto = MotoServer::start();
    let mut cfg = moto.aws_config("endpoints-override");
    cfg.endpoint_url = Some(closed_url());
    cfg.service_endpoints = all(&moto.endpoint);
    // Every client (S3 on 127.0.0.1 only works path-style) must go to moto, not the global URL.
    let lines = aws::provision(&cfg).await.expect("provision through the per-service endpoints");
    assert!(lines.iter().any(|l| l.contains("created bucket")), "{lines:?}");
    let problems = aws::check(&cfg, Duration::from_secs(10)).await;
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn check_names_the_unreachable_service_and_the_missing_resources() {
    let moto = MotoServer::start();
    let dead = closed_url();
    let mut cfg = moto.aws_config("endpoints-check");
    cfg.service_endpoints.s3 = Some(dead.clone());
    // Not provisioned: DynamoDB, SQS and KMS answer but their resources are missing.
    let problems = aws::check(&cfg, Duration::from_secs(10)).await;
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[1].starts_with(&format!("s3 at {dead}: unreachable")), "{problems:#?}");
    for (i, service) in [(0, Service::DynamoDb), (2, Service::Sqs), (3, Service::Kms)] {
        let line = &problems[i];
        assert!(line.starts_with(&format!("{} at {}:", service.name(), moto.endpoint)), "{line}");
        assert!(line.contains("does not exist") && line.contains("init"), "{line}");
    }
}
