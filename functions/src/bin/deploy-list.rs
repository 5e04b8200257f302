//! Lambda function for the `deploy-list` route.

stackhouse_lambda::route!(DEPLOY_LIST);
