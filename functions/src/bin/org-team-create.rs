//! Lambda function for the `org-team-create` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_TEAM_CREATE)
}
