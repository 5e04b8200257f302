//! Lambda function for the `stack-history-version` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_HISTORY_VERSION)
}
