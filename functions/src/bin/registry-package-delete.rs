//! Lambda function for the `registry-package-delete` route.

stackhouse_lambda::route!(REGISTRY_PACKAGE_DELETE);
