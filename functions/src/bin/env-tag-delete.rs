//! Lambda function for the `env-tag-delete` route.

stackhouse_lambda::route!(ENV_TAG_DELETE);
