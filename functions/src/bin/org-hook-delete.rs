//! Lambda function for the `org-hook-delete` route.

stackhouse_lambda::route!(ORG_HOOK_DELETE);
