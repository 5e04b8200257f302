//! Lambda function for the `stack-hook-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_HOOK_LIST)
}
