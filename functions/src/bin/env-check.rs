//! Lambda function for the `env-check` route.

stackhouse_lambda::route!(ENV_CHECK);
