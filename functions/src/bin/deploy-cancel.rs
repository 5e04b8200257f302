//! Lambda function for the `deploy-cancel` route.

stackhouse_lambda::route!(DEPLOY_CANCEL);
