//! Lambda function for the `update-events-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::UPDATE_EVENTS_LIST)
}
