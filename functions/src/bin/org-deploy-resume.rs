//! Lambda function for the `org-deploy-resume` route.

stackhouse_lambda::route!(ORG_DEPLOY_RESUME);
