//! Lambda function for the `stack-batch-encrypt` route.

stackhouse_lambda::route!(STACK_BATCH_ENCRYPT);
