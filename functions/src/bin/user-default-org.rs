//! Lambda function for the `user-default-org` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::USER_DEFAULT_ORG)
}
