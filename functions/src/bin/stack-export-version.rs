//! Lambda function for the `stack-export-version` route.

stackhouse_lambda::route!(STACK_EXPORT_VERSION);
