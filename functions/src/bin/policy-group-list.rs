//! Lambda function for the `policy-group-list` route.

stackhouse_lambda::route!(POLICY_GROUP_LIST);
