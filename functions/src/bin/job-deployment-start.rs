//! Lambda function for the `job-deployment-start` job.

stackhouse_lambda::job!(JOB_DEPLOYMENT_START);
