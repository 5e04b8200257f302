//! Lambda function for the `user-default-org` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::USER_DEFAULT_ORG)
}
