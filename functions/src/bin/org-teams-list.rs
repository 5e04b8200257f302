//! Lambda function for the `org-teams-list` route.

stackhouse_lambda::route!(ORG_TEAMS_LIST);
