//! Lambda function for the `stack-hook-create` route.

stackhouse_lambda::route!(STACK_HOOK_CREATE);
