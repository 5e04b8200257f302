//! Lambda function for the `update-complete` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_COMPLETE)
}
