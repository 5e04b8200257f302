//! Lambda function for the `env-decrypt` route.

stackhouse_lambda::route!(ENV_DECRYPT);
