//! Lambda function for the `update-events-batch` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_EVENTS_BATCH)
}
