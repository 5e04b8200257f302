//! Lambda function for the `org-team-delete` route.

stackhouse_lambda::route!(ORG_TEAM_DELETE);
