//! Lambda function for the `user-token-delete` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::USER_TOKEN_DELETE)
}
