//! Lambda function for the `user-get` route.

stackhouse_lambda::route!(USER_GET);
