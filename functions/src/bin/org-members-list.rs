//! Lambda function for the `org-members-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_MEMBERS_LIST)
}
