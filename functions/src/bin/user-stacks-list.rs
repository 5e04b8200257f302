//! Lambda function for the `user-stacks-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::USER_STACKS_LIST)
}
