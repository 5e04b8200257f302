//! Lambda function for the `user-default-org` route.

stackhouse_lambda::route!(USER_DEFAULT_ORG);
