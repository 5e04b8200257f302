//! Lambda function for the `org-get` route.

stackhouse_lambda::route!(ORG_GET);
