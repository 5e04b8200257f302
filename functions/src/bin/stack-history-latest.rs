//! Lambda function for the `stack-history-latest` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_HISTORY_LATEST)
}
