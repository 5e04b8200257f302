//! Lambda function for the `stack-encrypt` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_ENCRYPT)
}
