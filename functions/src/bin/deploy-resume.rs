//! Lambda function for the `deploy-resume` route.

stackhouse_lambda::route!(DEPLOY_RESUME);
