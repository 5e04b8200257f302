//! Lambda function for the `user-stacks-list` route.

stackhouse_lambda::route!(USER_STACKS_LIST);
