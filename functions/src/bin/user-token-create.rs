//! Lambda function for the `user-token-create` route.

stackhouse_lambda::route!(USER_TOKEN_CREATE);
