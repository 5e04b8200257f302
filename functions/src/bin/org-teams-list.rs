//! Lambda function for the `org-teams-list` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::ORG_TEAMS_LIST)
}
