//! Lambda function for the `schedule-pause` route.

stackhouse_lambda::route!(SCHEDULE_PAUSE);
