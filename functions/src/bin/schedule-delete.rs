//! Lambda function for the `schedule-delete` route.

stackhouse_lambda::route!(SCHEDULE_DELETE);
