//! Lambda function for the `schedule-history` route.

stackhouse_lambda::route!(SCHEDULE_HISTORY);
