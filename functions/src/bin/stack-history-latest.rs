//! Lambda function for the `stack-history-latest` route.

stackhouse_lambda::route!(STACK_HISTORY_LATEST);
