//! Lambda function for the `stack-export` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_EXPORT)
}
