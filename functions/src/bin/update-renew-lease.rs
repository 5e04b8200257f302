//! Lambda function for the `update-renew-lease` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::UPDATE_RENEW_LEASE)
}
