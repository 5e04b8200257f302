//! Lambda function for the `env-list-all` route.

stackhouse_lambda::route!(ENV_LIST_ALL);
