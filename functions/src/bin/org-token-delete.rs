//! Lambda function for the `org-token-delete` route.

stackhouse_lambda::route!(ORG_TOKEN_DELETE);
