//! Lambda function for the `org-member-add` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_MEMBER_ADD)
}
