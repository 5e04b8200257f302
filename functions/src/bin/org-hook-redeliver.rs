//! Lambda function for the `org-hook-redeliver` route.

stackhouse_lambda::route!(ORG_HOOK_REDELIVER);
