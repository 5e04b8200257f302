//! Lambda function for the `stack-collaborators-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_COLLABORATORS_LIST)
}
