//! Lambda function for the `stack-batch-encrypt` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_BATCH_ENCRYPT)
}
