//! Lambda function for the `deploy-get` route.

stackhouse_lambda::route!(DEPLOY_GET);
