//! Lambda function for the `update-events-list` route.

stackhouse_lambda::route!(UPDATE_EVENTS_LIST);
