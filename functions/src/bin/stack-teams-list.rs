//! Lambda function for the `stack-teams-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::STACK_TEAMS_LIST)
}
