//! Lambda function for the `stack-batch-decrypt` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_BATCH_DECRYPT)
}
