//! Lambda function for the `env-settings-update` route.

stackhouse_lambda::route!(ENV_SETTINGS_UPDATE);
