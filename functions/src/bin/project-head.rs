//! Lambda function for the `project-head` route.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve(&stackhouse::api::routes::PROJECT_HEAD)
}
