//! Lambda function for the `stack-policy-packs` route.

stackhouse_lambda::route!(STACK_POLICY_PACKS);
