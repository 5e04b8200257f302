//! Lambda function for the `deploy-pause` route.

stackhouse_lambda::route!(DEPLOY_PAUSE);
