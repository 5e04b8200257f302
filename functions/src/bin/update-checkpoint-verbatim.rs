//! Lambda function for the `update-checkpoint-verbatim` route.

stackhouse_lambda::route!(UPDATE_CHECKPOINT_VERBATIM);
