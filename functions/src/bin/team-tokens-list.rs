//! Lambda function for the `team-tokens-list` route.

stackhouse_lambda::route!(TEAM_TOKENS_LIST);
