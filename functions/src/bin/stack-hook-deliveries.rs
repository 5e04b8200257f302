//! Lambda function for the `stack-hook-deliveries` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_HOOK_DELIVERIES)
}
