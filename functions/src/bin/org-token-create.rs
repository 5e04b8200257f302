//! Lambda function for the `org-token-create` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_TOKEN_CREATE)
}
