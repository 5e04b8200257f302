//! Lambda function for the `registry-template-readme` route.

stackhouse_lambda::route!(REGISTRY_TEMPLATE_README);
