//! Lambda function for the `registry-packages-list` route.

stackhouse_lambda::route!(REGISTRY_PACKAGES_LIST);
