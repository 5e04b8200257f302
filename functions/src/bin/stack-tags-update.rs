//! Lambda function for the `stack-tags-update` route.

stackhouse_lambda::route!(STACK_TAGS_UPDATE);
