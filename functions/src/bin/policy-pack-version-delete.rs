//! Lambda function for the `policy-pack-version-delete` route.

stackhouse_lambda::route!(POLICY_PACK_VERSION_DELETE);
