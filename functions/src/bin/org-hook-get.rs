//! Lambda function for the `org-hook-get` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_HOOK_GET)
}
