//! Lambda function for the `stack-teams-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::STACK_TEAMS_LIST)
}
