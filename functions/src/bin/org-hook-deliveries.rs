//! Lambda function for the `org-hook-deliveries` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_HOOK_DELIVERIES)
}
