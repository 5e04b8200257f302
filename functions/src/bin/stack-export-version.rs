//! Lambda function for the `stack-export-version` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_EXPORT_VERSION)
}
