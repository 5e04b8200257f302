//! Lambda function for the `env-create` route.

stackhouse_lambda::route!(ENV_CREATE);
