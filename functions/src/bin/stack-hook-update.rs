//! Lambda function for the `stack-hook-update` route.

stackhouse_lambda::route!(STACK_HOOK_UPDATE);
