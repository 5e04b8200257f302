//! Lambda function for the `policy-group-batch` route.

stackhouse_lambda::route!(POLICY_GROUP_BATCH);
