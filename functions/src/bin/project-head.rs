//! Lambda function for the `project-head` route.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::serve(&stackhouse::api::routes::PROJECT_HEAD)
}
