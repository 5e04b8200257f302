//! Lambda function for the `env-yaml-open-read` route.

stackhouse_lambda::route!(ENV_YAML_OPEN_READ);
