//! Lambda function for the `env-version-get` route.

stackhouse_lambda::route!(ENV_VERSION_GET);
