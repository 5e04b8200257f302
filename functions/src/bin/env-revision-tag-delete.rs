//! Lambda function for the `env-revision-tag-delete` route.

stackhouse_lambda::route!(ENV_REVISION_TAG_DELETE);
