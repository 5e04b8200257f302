//! Lambda function for the `stack-collaborators-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_COLLABORATORS_LIST)
}
