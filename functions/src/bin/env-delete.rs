//! Lambda function for the `env-delete` route.

stackhouse_lambda::route!(ENV_DELETE);
