//! Lambda function for the `stack-hook-delete` route.

stackhouse_lambda::route!(STACK_HOOK_DELETE);
