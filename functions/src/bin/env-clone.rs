//! Lambda function for the `env-clone` route.

stackhouse_lambda::route!(ENV_CLONE);
