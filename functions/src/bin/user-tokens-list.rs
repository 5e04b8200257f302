//! Lambda function for the `user-tokens-list` route.

stackhouse_lambda::route!(USER_TOKENS_LIST);
