//! Lambda function for the `user-token-delete` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::USER_TOKEN_DELETE)
}
