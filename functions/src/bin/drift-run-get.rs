//! Lambda function for the `drift-run-get` route.

stackhouse_lambda::route!(DRIFT_RUN_GET);
