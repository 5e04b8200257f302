//! Lambda function for the `env-open` route.

stackhouse_lambda::route!(ENV_OPEN);
