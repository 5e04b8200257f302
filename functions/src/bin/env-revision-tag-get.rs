//! Lambda function for the `env-revision-tag-get` route.

stackhouse_lambda::route!(ENV_REVISION_TAG_GET);
