//! Lambda function for the `deploy-status` route.

stackhouse_lambda::route!(DEPLOY_STATUS);
