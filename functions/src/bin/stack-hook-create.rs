//! Lambda function for the `stack-hook-create` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_HOOK_CREATE)
}
