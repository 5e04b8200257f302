//! Lambda function for the `org-auditlogs-list` route.

stackhouse_lambda::route!(ORG_AUDITLOGS_LIST);
