//! Lambda function for the `user-stacks-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::USER_STACKS_LIST)
}
