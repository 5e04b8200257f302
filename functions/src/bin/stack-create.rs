//! Lambda function for the `stack-create` route.

stackhouse_lambda::route!(STACK_CREATE);
