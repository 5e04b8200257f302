//! Lambda function for the `update-cancel` route.

stackhouse_lambda::route!(UPDATE_CANCEL);
