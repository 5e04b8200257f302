//! Lambda function for the `stack-collaborators-list` route.

stackhouse_lambda::route!(STACK_COLLABORATORS_LIST);
