//! Lambda function for the `update-create` route.

stackhouse_lambda::route!(UPDATE_CREATE);
