//! Lambda function for the `env-revision-tags` route.

stackhouse_lambda::route!(ENV_REVISION_TAGS);
