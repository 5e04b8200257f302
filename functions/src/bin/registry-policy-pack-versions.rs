//! Lambda function for the `registry-policy-pack-versions` route.

stackhouse_lambda::route!(REGISTRY_POLICY_PACK_VERSIONS);
