//! Lambda function for the `stack-hook-redeliver` route.

stackhouse_lambda::route!(STACK_HOOK_REDELIVER);
