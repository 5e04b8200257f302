//! Lambda function for the `stack-log-decryption` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_LOG_DECRYPTION)
}
