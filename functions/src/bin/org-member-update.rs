//! Lambda function for the `org-member-update` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_MEMBER_UPDATE)
}
