//! Lambda function for the `deploy-settings-merge` route.

stackhouse_lambda::route!(DEPLOY_SETTINGS_MERGE);
