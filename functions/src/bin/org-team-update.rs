//! Lambda function for the `org-team-update` route.

stackhouse_lambda::route!(ORG_TEAM_UPDATE);
