//! Lambda function for the `env-update` route.

stackhouse_lambda::route!(ENV_UPDATE);
