//! Lambda function for the `deploy-logs` route.

stackhouse_lambda::route!(DEPLOY_LOGS);
