//! Lambda function for the `org-deploy-list` route.

stackhouse_lambda::route!(ORG_DEPLOY_LIST);
