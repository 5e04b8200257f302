//! Lambda function for the `update-checkpoint` route.

stackhouse_lambda::route!(UPDATE_CHECKPOINT);
