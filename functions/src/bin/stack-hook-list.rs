//! Lambda function for the `stack-hook-list` route.

stackhouse_lambda::route!(STACK_HOOK_LIST);
