//! Lambda function for the `org-events-list` route.

stackhouse_lambda::route!(ORG_EVENTS_LIST);
