//! Lambda function for the `update-checkpoint-verbatim` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_CHECKPOINT_VERBATIM)
}
