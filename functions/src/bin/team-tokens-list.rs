//! Lambda function for the `team-tokens-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::TEAM_TOKENS_LIST)
}
