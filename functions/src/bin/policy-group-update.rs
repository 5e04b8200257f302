//! Lambda function for the `policy-group-update` route.

stackhouse_lambda::route!(POLICY_GROUP_UPDATE);
