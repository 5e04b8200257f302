//! Lambda function for the `registry-templates-list` route.

stackhouse_lambda::route!(REGISTRY_TEMPLATES_LIST);
