//! Lambda function for the `stack-hook-create` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_HOOK_CREATE)
}
