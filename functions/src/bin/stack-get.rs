//! Lambda function for the `stack-get` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_GET)
}
