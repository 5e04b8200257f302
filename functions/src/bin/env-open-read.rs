//! Lambda function for the `env-open-read` route.

stackhouse_lambda::route!(ENV_OPEN_READ);
