//! Lambda function for the `registry-template-get` route.

stackhouse_lambda::route!(REGISTRY_TEMPLATE_GET);
