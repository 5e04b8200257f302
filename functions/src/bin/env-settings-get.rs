//! Lambda function for the `env-settings-get` route.

stackhouse_lambda::route!(ENV_SETTINGS_GET);
