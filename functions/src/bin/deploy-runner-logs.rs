//! Lambda function for the `deploy-runner-logs` route.

stackhouse_lambda::route!(DEPLOY_RUNNER_LOGS);
