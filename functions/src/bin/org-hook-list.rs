//! Lambda function for the `org-hook-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_HOOK_LIST)
}
