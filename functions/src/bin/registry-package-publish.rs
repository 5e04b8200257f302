//! Lambda function for the `registry-package-publish` route.

stackhouse_lambda::route!(REGISTRY_PACKAGE_PUBLISH);
