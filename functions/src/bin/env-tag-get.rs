//! Lambda function for the `env-tag-get` route.

stackhouse_lambda::route!(ENV_TAG_GET);
