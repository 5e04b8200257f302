//! Lambda function for the `team-tokens-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::TEAM_TOKENS_LIST)
}
