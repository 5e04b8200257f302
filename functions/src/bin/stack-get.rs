//! Lambda function for the `stack-get` route.

stackhouse_lambda::route!(STACK_GET);
