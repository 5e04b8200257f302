//! Lambda function for the `stack-batch-encrypt` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_BATCH_ENCRYPT)
}
