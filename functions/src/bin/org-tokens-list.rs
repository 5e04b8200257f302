//! Lambda function for the `org-tokens-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_TOKENS_LIST)
}
