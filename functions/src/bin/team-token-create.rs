//! Lambda function for the `team-token-create` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::TEAM_TOKEN_CREATE)
}
