//! Lambda function for the `team-token-create` route.

stackhouse_lambda::route!(TEAM_TOKEN_CREATE);
