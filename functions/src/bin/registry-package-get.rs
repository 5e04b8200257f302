//! Lambda function for the `registry-package-get` route.

stackhouse_lambda::route!(REGISTRY_PACKAGE_GET);
