//! Lambda function for the `update-create` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::UPDATE_CREATE)
}
