//! Lambda function for the `org-team-get` route.

stackhouse_lambda::route!(ORG_TEAM_GET);
