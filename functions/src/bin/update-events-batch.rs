//! Lambda function for the `update-events-batch` route.

stackhouse_lambda::route!(UPDATE_EVENTS_BATCH);
