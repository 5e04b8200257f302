//! Lambda function for the `capabilities-get` route.

stackhouse_lambda::route!(CAPABILITIES_GET);
