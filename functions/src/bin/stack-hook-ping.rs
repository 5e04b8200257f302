//! Lambda function for the `stack-hook-ping` route.

stackhouse_lambda::route!(STACK_HOOK_PING);
