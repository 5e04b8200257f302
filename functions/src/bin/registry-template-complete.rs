//! Lambda function for the `registry-template-complete` route.

stackhouse_lambda::route!(REGISTRY_TEMPLATE_COMPLETE);
