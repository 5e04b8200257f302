//! Lambda function for the `stack-hook-deliveries` route.

stackhouse_lambda::route!(STACK_HOOK_DELIVERIES);
