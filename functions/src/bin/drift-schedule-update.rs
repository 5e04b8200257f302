//! Lambda function for the `drift-schedule-update` route.

stackhouse_lambda::route!(DRIFT_SCHEDULE_UPDATE);
