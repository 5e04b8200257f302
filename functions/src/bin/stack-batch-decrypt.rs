//! Lambda function for the `stack-batch-decrypt` route.

stackhouse_lambda::route!(STACK_BATCH_DECRYPT);
