//! Lambda function for the `registry-policy-pack-delete` route.

stackhouse_lambda::route!(REGISTRY_POLICY_PACK_DELETE);
