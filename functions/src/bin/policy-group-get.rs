//! Lambda function for the `policy-group-get` route.

stackhouse_lambda::route!(POLICY_GROUP_GET);
