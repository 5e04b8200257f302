//! Lambda function for the `update-events-batch` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::UPDATE_EVENTS_BATCH)
}
