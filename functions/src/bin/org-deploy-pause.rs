//! Lambda function for the `org-deploy-pause` route.

stackhouse_lambda::route!(ORG_DEPLOY_PAUSE);
