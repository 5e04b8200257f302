//! Lambda function for the `org-hook-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_HOOK_LIST)
}
