//! Lambda function for the `drift-runs` route.

stackhouse_lambda::route!(DRIFT_RUNS);
