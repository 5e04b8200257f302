//! Lambda function for the `deploy-updates` route.

stackhouse_lambda::route!(DEPLOY_UPDATES);
