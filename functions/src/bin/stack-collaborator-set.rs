//! Lambda function for the `stack-collaborator-set` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_COLLABORATOR_SET)
}
