//! Lambda function for the `policy-pack-delete` route.

stackhouse_lambda::route!(POLICY_PACK_DELETE);
