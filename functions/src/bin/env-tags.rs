//! Lambda function for the `env-tags` route.

stackhouse_lambda::route!(ENV_TAGS);
