//! Lambda function for the `ttl-schedule-update` route.

stackhouse_lambda::route!(TTL_SCHEDULE_UPDATE);
