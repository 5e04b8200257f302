//! Lambda function for the `stack-hook-delete` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_HOOK_DELETE)
}
