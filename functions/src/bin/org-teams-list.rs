//! Lambda function for the `org-teams-list` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_TEAMS_LIST)
}
