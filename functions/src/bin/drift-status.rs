//! Lambda function for the `drift-status` route.

stackhouse_lambda::route!(DRIFT_STATUS);
