//! Lambda function for the `env-yaml-open` route.

stackhouse_lambda::route!(ENV_YAML_OPEN);
