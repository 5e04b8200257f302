//! Lambda function for the `policy-pack-list` route.

stackhouse_lambda::route!(POLICY_PACK_LIST);
