//! Lambda function for the `health-get` route.

stackhouse_lambda::route!(HEALTH_GET);
