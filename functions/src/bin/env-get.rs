//! Lambda function for the `env-get` route.

stackhouse_lambda::route!(ENV_GET);
