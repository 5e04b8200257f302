//! Lambda function for the `drift-schedule-create` route.

stackhouse_lambda::route!(DRIFT_SCHEDULE_CREATE);
