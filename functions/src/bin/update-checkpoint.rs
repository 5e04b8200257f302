//! Lambda function for the `update-checkpoint` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_CHECKPOINT)
}
