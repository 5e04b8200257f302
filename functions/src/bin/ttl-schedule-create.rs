//! Lambda function for the `ttl-schedule-create` route.

stackhouse_lambda::route!(TTL_SCHEDULE_CREATE);
