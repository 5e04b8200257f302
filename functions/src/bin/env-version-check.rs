//! Lambda function for the `env-version-check` route.

stackhouse_lambda::route!(ENV_VERSION_CHECK);
