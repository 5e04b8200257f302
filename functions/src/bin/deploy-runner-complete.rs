//! Lambda function for the `deploy-runner-complete` route.

stackhouse_lambda::route!(DEPLOY_RUNNER_COMPLETE);
