//! Lambda function for the `env-revisions` route.

stackhouse_lambda::route!(ENV_REVISIONS);
