//! Lambda function for the `env-version-decrypt` route.

stackhouse_lambda::route!(ENV_VERSION_DECRYPT);
