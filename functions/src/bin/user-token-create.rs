//! Lambda function for the `user-token-create` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::USER_TOKEN_CREATE)
}
