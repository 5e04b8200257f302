//! Lambda function for the `stack-decrypt` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_DECRYPT)
}
