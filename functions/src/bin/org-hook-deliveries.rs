//! Lambda function for the `org-hook-deliveries` route.

stackhouse_lambda::route!(ORG_HOOK_DELIVERIES);
