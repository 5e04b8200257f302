//! Lambda function for the `env-yaml-check` route.

stackhouse_lambda::route!(ENV_YAML_CHECK);
