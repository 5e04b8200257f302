//! Lambda function for the `team-token-delete` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::TEAM_TOKEN_DELETE)
}
