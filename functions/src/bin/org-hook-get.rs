//! Lambda function for the `org-hook-get` route.

stackhouse_lambda::route!(ORG_HOOK_GET);
