//! Lambda function for the `project-head` route.

stackhouse_lambda::route!(PROJECT_HEAD);
