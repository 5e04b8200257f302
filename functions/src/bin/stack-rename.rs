//! Lambda function for the `stack-rename` route.

stackhouse_lambda::route!(STACK_RENAME);
