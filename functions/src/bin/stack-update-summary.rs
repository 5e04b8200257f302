//! Lambda function for the `stack-update-summary` route.

stackhouse_lambda::route!(STACK_UPDATE_SUMMARY);
