//! Lambda function for the `update-journal-entries` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_JOURNAL_ENTRIES)
}
