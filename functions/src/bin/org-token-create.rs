//! Lambda function for the `org-token-create` route.

stackhouse_lambda::route!(ORG_TOKEN_CREATE);
