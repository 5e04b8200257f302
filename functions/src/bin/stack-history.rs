//! Lambda function for the `stack-history` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_HISTORY)
}
