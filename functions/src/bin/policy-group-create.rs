//! Lambda function for the `policy-group-create` route.

stackhouse_lambda::route!(POLICY_GROUP_CREATE);
