//! Lambda function for the `registry-package-complete` route.

stackhouse_lambda::route!(REGISTRY_PACKAGE_COMPLETE);
