//! Lambda function for the `policy-group-delete` route.

stackhouse_lambda::route!(POLICY_GROUP_DELETE);
