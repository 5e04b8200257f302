//! Lambda function for the `org-token-delete` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_TOKEN_DELETE)
}
