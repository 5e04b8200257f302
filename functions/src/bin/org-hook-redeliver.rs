//! Lambda function for the `org-hook-redeliver` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_HOOK_REDELIVER)
}
