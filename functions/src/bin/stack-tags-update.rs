//! Lambda function for the `stack-tags-update` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_TAGS_UPDATE)
}
