//! Lambda function for the `user-get` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::USER_GET)
}
