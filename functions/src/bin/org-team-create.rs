//! Lambda function for the `org-team-create` route.

stackhouse_lambda::route!(ORG_TEAM_CREATE);
