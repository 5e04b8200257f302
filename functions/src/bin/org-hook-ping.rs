//! Lambda function for the `org-hook-ping` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::ORG_HOOK_PING)
}
