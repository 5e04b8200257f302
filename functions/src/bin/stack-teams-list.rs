//! Lambda function for the `stack-teams-list` route.

stackhouse_lambda::route!(STACK_TEAMS_LIST);
