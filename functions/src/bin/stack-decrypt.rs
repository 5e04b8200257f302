//! Lambda function for the `stack-decrypt` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_DECRYPT)
}
