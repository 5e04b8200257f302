//! Lambda function for the `schedule-get` route.

stackhouse_lambda::route!(SCHEDULE_GET);
