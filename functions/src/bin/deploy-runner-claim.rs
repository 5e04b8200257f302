//! Lambda function for the `deploy-runner-claim` route.

stackhouse_lambda::route!(DEPLOY_RUNNER_CLAIM);
