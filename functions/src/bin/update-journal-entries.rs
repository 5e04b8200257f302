//! Lambda function for the `update-journal-entries` route.

stackhouse_lambda::route!(UPDATE_JOURNAL_ENTRIES);
