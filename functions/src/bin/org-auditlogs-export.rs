//! Lambda function for the `org-auditlogs-export` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_AUDITLOGS_EXPORT)
}
