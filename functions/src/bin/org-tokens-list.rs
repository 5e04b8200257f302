//! Lambda function for the `org-tokens-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_TOKENS_LIST)
}
