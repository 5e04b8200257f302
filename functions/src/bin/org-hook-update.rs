//! Lambda function for the `org-hook-update` route.

stackhouse_lambda::route!(ORG_HOOK_UPDATE);
