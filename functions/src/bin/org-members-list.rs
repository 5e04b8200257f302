//! Lambda function for the `org-members-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_MEMBERS_LIST)
}
