//! The conformance, secrets and jobs suites on the AWS backend with one server per service:
//! SeaweedFS (S3), LocalStack (SQS, KMS) and moto (DynamoDB), as `.ci/mixed-lane` starts them.
//! Built only with `--features mixed-lane`; the endpoints come from `STACKHOUSE_MIXED_*`.
#![cfg(feature = "mixed-lane")]

mod conformance {
    stackhouse_tests::conformance_tests!(stackhouse_tests::server::mixed_target);
}

mod secrets {
    stackhouse_tests::secrets_conformance_tests!(stackhouse_tests::server::mixed_target);
}

mod jobs {
    stackhouse_tests::jobs_conformance_tests!(stackhouse_tests::server::mixed_target);
}
