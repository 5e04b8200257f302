//! Adapters for the ports: `embedded` (one process, files + SQLite) and `aws` (DynamoDB, S3,
//! SQS, KMS, or any AWS-compatible endpoint), and `undeclared` for a port a function was built
//! without.

pub mod aws;
pub mod counting;
pub mod embedded;
pub mod undeclared;

/// Failure to open or provision an adapter set: says which service and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct AdapterError {
    /// Which service (e.g. `dynamodb`, `sqlite`).
    pub service: &'static str,
    /// What failed, for a human.
    pub message: String,
}

impl AdapterError {
    /// Builds an error for a service.
    pub fn new(service: &'static str, message: impl std::fmt::Display) -> Self {
        AdapterError { service, message: message.to_string() }
    }
}
