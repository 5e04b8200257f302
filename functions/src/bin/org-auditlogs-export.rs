//! Lambda function for the `org-auditlogs-export` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_AUDITLOGS_EXPORT)
}
