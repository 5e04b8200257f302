//! Lambda function for the `env-revision-tag-update` route.

stackhouse_lambda::route!(ENV_REVISION_TAG_UPDATE);
