//! Lambda function for the `stack-log-decryption` route.

stackhouse_lambda::route!(STACK_LOG_DECRYPTION);
