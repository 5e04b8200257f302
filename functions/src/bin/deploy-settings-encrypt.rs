//! Lambda function for the `deploy-settings-encrypt` route.

stackhouse_lambda::route!(DEPLOY_SETTINGS_ENCRYPT);
