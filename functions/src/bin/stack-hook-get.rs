//! Lambda function for the `stack-hook-get` route.

stackhouse_lambda::route!(STACK_HOOK_GET);
