//! Lambda function for the `org-team-update` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_TEAM_UPDATE)
}
