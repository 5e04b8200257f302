//! Lambda function for the `registry-template-versions` route.

stackhouse_lambda::route!(REGISTRY_TEMPLATE_VERSIONS);
