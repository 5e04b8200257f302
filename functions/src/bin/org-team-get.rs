//! Lambda function for the `org-team-get` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_TEAM_GET)
}
