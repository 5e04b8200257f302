//! Lambda function for the `org-hook-create` route.

stackhouse_lambda::route!(ORG_HOOK_CREATE);
