//! Lambda function for the `stack-delete` route.

stackhouse_lambda::route!(STACK_DELETE);
