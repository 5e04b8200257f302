//! Lambda function for the `deploy-metadata` route.

stackhouse_lambda::route!(DEPLOY_METADATA);
