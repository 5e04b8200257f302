//! Lambda function for the `stack-collaborator-remove` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_COLLABORATOR_REMOVE)
}
