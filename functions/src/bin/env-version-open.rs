//! Lambda function for the `env-version-open` route.

stackhouse_lambda::route!(ENV_VERSION_OPEN);
