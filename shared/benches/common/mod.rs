//! Data shared by the benches: one realistic resource of a deployment.

use serde_json::{json, Value};

/// The `i`-th S3 bucket of the benchmark stack, as a deployment resource.
pub fn resource(i: usize) -> Value {
    json!({
        "urn": format!("urn:pulumi:dev::bench::aws:s3/bucket:Bucket::bucket-{i}"),
        "custom": true,
        "id": format!("bucket-{i}-0a1b2c3d"),
        "type": "aws:s3/bucket:Bucket",
        "inputs": {"acl": "private", "tags": {"Name": format!("bucket-{i}")}},
        "outputs": {"acl": "private", "arn": format!("arn:aws:s3:::bucket-{i}-0a1b2c3d"), "bucket": format!("bucket-{i}-0a1b2c3d")},
        "parent": "urn:pulumi:dev::bench::pulumi:pulumi:Stack::bench-dev",
        "provider": "urn:pulumi:dev::bench::pulumi:providers:aws::default_6_0_0::04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "propertyDependencies": {"acl": [], "tags": []}
    })
}
