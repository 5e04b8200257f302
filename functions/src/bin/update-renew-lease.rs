//! Lambda function for the `update-renew-lease` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::UPDATE_RENEW_LEASE)
}
