//! Lambda function for the `org-update` route.

stackhouse_lambda::route!(ORG_UPDATE);
