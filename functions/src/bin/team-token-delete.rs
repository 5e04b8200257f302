//! Lambda function for the `team-token-delete` route.

stackhouse_lambda::route!(TEAM_TOKEN_DELETE);
