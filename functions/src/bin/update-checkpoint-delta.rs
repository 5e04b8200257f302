//! Lambda function for the `update-checkpoint-delta` route.

stackhouse_lambda::route!(UPDATE_CHECKPOINT_DELTA);
