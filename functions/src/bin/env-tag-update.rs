//! Lambda function for the `env-tag-update` route.

stackhouse_lambda::route!(ENV_TAG_UPDATE);
