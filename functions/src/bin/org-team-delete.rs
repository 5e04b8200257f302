//! Lambda function for the `org-team-delete` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_TEAM_DELETE)
}
