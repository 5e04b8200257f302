//! Lambda function for the `org-auditlogs-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_AUDITLOGS_LIST)
}
