//! Lambda function for the `schedule-list` route.

stackhouse_lambda::route!(SCHEDULE_LIST);
