//! Lambda function for the `registry-policy-pack-publish` route.

stackhouse_lambda::route!(REGISTRY_POLICY_PACK_PUBLISH);
