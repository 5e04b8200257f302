//! Lambda function for the `registry-policy-pack-version-get` route.

stackhouse_lambda::route!(REGISTRY_POLICY_PACK_VERSION_GET);
