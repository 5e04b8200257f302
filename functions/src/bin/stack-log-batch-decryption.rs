//! Lambda function for the `stack-log-batch-decryption` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_LOG_BATCH_DECRYPTION)
}
