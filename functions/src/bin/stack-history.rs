//! Lambda function for the `stack-history` route.

stackhouse_lambda::route!(STACK_HISTORY);
