//! Lambda function for the `stack-tags-update` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_TAGS_UPDATE)
}
