//! Lambda function for the `update-checkpoint-delta` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_CHECKPOINT_DELTA)
}
