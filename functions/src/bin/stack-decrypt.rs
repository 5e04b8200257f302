//! Lambda function for the `stack-decrypt` route.

stackhouse_lambda::route!(STACK_DECRYPT);
