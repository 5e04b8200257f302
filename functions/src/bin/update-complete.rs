//! Lambda function for the `update-complete` route.

stackhouse_lambda::route!(UPDATE_COMPLETE);
