//! Lambda function for the `env-list` route.

stackhouse_lambda::route!(ENV_LIST);
