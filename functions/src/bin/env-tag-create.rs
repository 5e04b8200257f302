//! Lambda function for the `env-tag-create` route.

stackhouse_lambda::route!(ENV_TAG_CREATE);
