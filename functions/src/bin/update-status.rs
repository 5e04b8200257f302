//! Lambda function for the `update-status` route.

stackhouse_lambda::route!(UPDATE_STATUS);
