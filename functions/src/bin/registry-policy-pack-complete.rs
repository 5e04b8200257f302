//! Lambda function for the `registry-policy-pack-complete` route.

stackhouse_lambda::route!(REGISTRY_POLICY_PACK_COMPLETE);
