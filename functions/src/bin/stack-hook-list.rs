//! Lambda function for the `stack-hook-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_HOOK_LIST)
}
