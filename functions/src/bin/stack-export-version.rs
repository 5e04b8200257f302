//! Lambda function for the `stack-export-version` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_EXPORT_VERSION)
}
