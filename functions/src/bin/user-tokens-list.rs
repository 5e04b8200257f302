//! Lambda function for the `user-tokens-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::USER_TOKENS_LIST)
}
