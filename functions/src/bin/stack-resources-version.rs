//! Lambda function for the `stack-resources-version` route.

stackhouse_lambda::route!(STACK_RESOURCES_VERSION);
