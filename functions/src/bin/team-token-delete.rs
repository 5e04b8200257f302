//! Lambda function for the `team-token-delete` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::TEAM_TOKEN_DELETE)
}
