//! Lambda function for the `update-start` route.

stackhouse_lambda::route!(UPDATE_START);
