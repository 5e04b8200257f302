//! Lambda function for the `user-token-delete` route.

stackhouse_lambda::route!(USER_TOKEN_DELETE);
