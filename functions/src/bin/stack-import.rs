//! Lambda function for the `stack-import` route.

stackhouse_lambda::route!(STACK_IMPORT);
