//! Lambda function for the `schedule-create` route.

stackhouse_lambda::route!(SCHEDULE_CREATE);
