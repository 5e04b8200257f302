//! Lambda function for the `update-journal-entries` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::UPDATE_JOURNAL_ENTRIES)
}
