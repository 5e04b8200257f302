//! Lambda function for the `schedule-update` route.

stackhouse_lambda::route!(SCHEDULE_UPDATE);
