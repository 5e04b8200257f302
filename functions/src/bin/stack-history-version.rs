//! Lambda function for the `stack-history-version` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_HISTORY_VERSION)
}
