//! Lambda function for the `policy-pack-version-complete` route.

stackhouse_lambda::route!(POLICY_PACK_VERSION_COMPLETE);
