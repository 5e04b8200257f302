//! Lambda function for the `policy-pack-version-get` route.

stackhouse_lambda::route!(POLICY_PACK_VERSION_GET);
