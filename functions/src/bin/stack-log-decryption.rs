//! Lambda function for the `stack-log-decryption` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_LOG_DECRYPTION)
}
