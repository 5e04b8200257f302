//! Lambda function for the `org-token-delete` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_TOKEN_DELETE)
}
