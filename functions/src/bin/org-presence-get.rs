//! Lambda function for the `org-presence-get` route.

stackhouse_lambda::route!(ORG_PRESENCE_GET);
