//! Lambda function for the `job-deployment-reaper` job.

stackhouse_lambda::job!(JOB_DEPLOYMENT_REAPER);
