//! Lambda function for the `deploy-settings-replace` route.

stackhouse_lambda::route!(DEPLOY_SETTINGS_REPLACE);
