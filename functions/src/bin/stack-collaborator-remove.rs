//! Lambda function for the `stack-collaborator-remove` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_COLLABORATOR_REMOVE)
}
