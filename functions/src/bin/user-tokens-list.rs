//! Lambda function for the `user-tokens-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::USER_TOKENS_LIST)
}
