//! Lambda function for the `capabilities-get` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::CAPABILITIES_GET)
}
