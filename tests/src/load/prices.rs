//! AWS prices and the cost of a run's storage operations and requests.

use serde::Serialize;
use stackhouse::adapters::counting::OpCounts;

/// Public AWS list prices, us-east-1, in USD (docs/BENCHMARKS.md gives their date).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Prices {
    /// DynamoDB on-demand, per read request unit.
    pub ddb_read_unit: f64,
    /// DynamoDB on-demand, per write request unit.
    pub ddb_write_unit: f64,
    /// S3 Standard PUT, COPY, POST, LIST, per request.
    pub s3_put: f64,
    /// S3 Standard GET, per request.
    pub s3_get: f64,
    /// KMS, per request.
    pub kms_request: f64,
    /// SQS standard queue, per request.
    pub sqs_request: f64,
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub apigw_request: f64,
    /// Lambda, per invocation (duration not included: see docs/BENCHMARKS.md).
    pub lambda_request: f64,
}

/// The prices used in docs/BENCHMARKS.md.
pub const PRICES: Prices = Prices {
    ddb_read_unit: 0.125 / 1e6,
    ddb_write_unit: 0.625 / 1e6,
    s3_put: 0.005 / 1e3,
    s3_get: 0.0004 / 1e3,
    kms_request: 0.03 / 1e4,
    sqs_request: 0.40 / 1e6,
    apigw_request: 1.00 / 1e6,
    lambda_request: 0.20 / 1e6,
};

/// Cost in USD of storage operations and of `requests` API requests (one Lambda invocation
/// each).
pub fn cost(ops: &OpCounts, requests: u64, p: &Prices) -> f64 {
    ops.meta_read_units as f64 * p.ddb_read_unit
        + ops.meta_write_units as f64 * p.ddb_write_unit
        + (ops.blob_puts + ops.blob_lists) as f64 * p.s3_put
        + ops.blob_gets as f64 * p.s3_get
        + ops.kms_calls as f64 * p.kms_request
        + ops.queue_requests() as f64 * p.sqs_request
        + requests as f64 * (p.apigw_request + p.lambda_request)
}

pub(super) fn add_ops(a: OpCounts, b: OpCounts) -> OpCounts {
    // OpCounts has subtraction only; a + b == a - (0 - b) does not work on unsigned numbers,
    // so add field by field through the serialised form.
    let mut out = a;
    macro_rules! sum {
        ($($f:ident),*) => { $( out.$f = a.$f + b.$f; )* };
    }
    sum!(
        meta_gets,
        meta_queries,
        meta_query_items,
        meta_puts,
        meta_deletes,
        meta_transactions,
        meta_transaction_items,
        meta_read_units,
        meta_write_units,
        meta_bytes_written,
        blob_puts,
        blob_gets,
        blob_lists,
        blob_deletes,
        blob_presigns,
        blob_bytes_put,
        blob_bytes_got,
        kms_calls,
        queue_sends,
        queue_receives,
        queue_acks
    );
    out
}

pub(super) fn scale_ops(a: OpCounts, k: u64) -> OpCounts {
    let mut out = OpCounts::default();
    for _ in 0..k {
        out = add_ops(out, a);
    }
    out
}
