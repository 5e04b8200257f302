//! Lambda function for the `org-hook-list` route.

stackhouse_lambda::route!(ORG_HOOK_LIST);
