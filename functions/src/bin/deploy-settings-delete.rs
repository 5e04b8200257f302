//! Lambda function for the `deploy-settings-delete` route.

stackhouse_lambda::route!(DEPLOY_SETTINGS_DELETE);
