//! Lambda function for the `stack-resources-latest` route.

stackhouse_lambda::route!(STACK_RESOURCES_LATEST);
