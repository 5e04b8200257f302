//! Lambda function for the `stack-encrypt` route.

stackhouse_lambda::route!(STACK_ENCRYPT);
