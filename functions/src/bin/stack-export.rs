//! Lambda function for the `stack-export` route.

stackhouse_lambda::route!(STACK_EXPORT);
