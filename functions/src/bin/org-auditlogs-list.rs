//! Lambda function for the `org-auditlogs-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_AUDITLOGS_LIST)
}
