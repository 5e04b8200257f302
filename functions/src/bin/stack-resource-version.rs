//! Lambda function for the `stack-resource-version` route.

stackhouse_lambda::route!(STACK_RESOURCE_VERSION);
