//! Lambda function for the `registry-template-publish` route.

stackhouse_lambda::route!(REGISTRY_TEMPLATE_PUBLISH);
