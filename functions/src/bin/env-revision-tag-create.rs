//! Lambda function for the `env-revision-tag-create` route.

stackhouse_lambda::route!(ENV_REVISION_TAG_CREATE);
