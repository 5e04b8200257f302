//! Lambda function for the `stack-resource-latest` route.

stackhouse_lambda::route!(STACK_RESOURCE_LATEST);
