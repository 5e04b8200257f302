//! Lambda function for the `stack-collaborator-set` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_COLLABORATOR_SET)
}
