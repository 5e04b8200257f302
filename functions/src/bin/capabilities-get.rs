//! Lambda function for the `capabilities-get` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::CAPABILITIES_GET)
}
