//! Lambda function for the `org-hook-create` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_HOOK_CREATE)
}
