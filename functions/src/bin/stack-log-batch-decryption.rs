//! Lambda function for the `stack-log-batch-decryption` route.

stackhouse_lambda::route!(STACK_LOG_BATCH_DECRYPTION);
