//! Lambda function for the `update-events-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_EVENTS_LIST)
}
