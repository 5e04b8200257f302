//! Lambda function for the `deploy-create` route.

stackhouse_lambda::route!(DEPLOY_CREATE);
