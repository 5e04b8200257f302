//! Lambda function for the `deploy-settings-get` route.

stackhouse_lambda::route!(DEPLOY_SETTINGS_GET);
