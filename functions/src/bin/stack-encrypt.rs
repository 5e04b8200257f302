//! Lambda function for the `stack-encrypt` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_ENCRYPT)
}
