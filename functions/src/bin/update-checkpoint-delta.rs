//! Lambda function for the `update-checkpoint-delta` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::UPDATE_CHECKPOINT_DELTA)
}
