//! Lambda function for the `env-version-retract` route.

stackhouse_lambda::route!(ENV_VERSION_RETRACT);
