//! Lambda function for the `stack-resources-count` route.

stackhouse_lambda::route!(STACK_RESOURCES_COUNT);
