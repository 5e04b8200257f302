//! Lambda function for the `org-tokens-list` route.

stackhouse_lambda::route!(ORG_TOKENS_LIST);
