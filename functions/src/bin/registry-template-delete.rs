//! Lambda function for the `registry-template-delete` route.

stackhouse_lambda::route!(REGISTRY_TEMPLATE_DELETE);
