//! Lambda function for the `schedule-resume` route.

stackhouse_lambda::route!(SCHEDULE_RESUME);
