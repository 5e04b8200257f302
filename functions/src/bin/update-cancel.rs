//! Lambda function for the `update-cancel` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_CANCEL)
}
