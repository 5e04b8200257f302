//! Lambda function for the `org-auditlogs-export` route.

stackhouse_lambda::route!(ORG_AUDITLOGS_EXPORT);
