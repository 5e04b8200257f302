//! Lambda function for the `team-token-create` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::TEAM_TOKEN_CREATE)
}
