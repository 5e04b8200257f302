//! Lambda function for the `org-hook-ping` route.

stackhouse_lambda::route!(ORG_HOOK_PING);
