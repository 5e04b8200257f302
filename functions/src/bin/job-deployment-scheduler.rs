//! Lambda function for the `job-deployment-scheduler` job.

stackhouse_lambda::job!(JOB_DEPLOYMENT_SCHEDULER);
