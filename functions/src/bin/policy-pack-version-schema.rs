//! Lambda function for the `policy-pack-version-schema` route.

stackhouse_lambda::route!(POLICY_PACK_VERSION_SCHEMA);
