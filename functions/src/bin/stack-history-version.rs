//! Lambda function for the `stack-history-version` route.

stackhouse_lambda::route!(STACK_HISTORY_VERSION);
