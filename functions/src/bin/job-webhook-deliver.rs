//! Lambda function for the `job-webhook-deliver` job.

stackhouse_lambda::job!(JOB_WEBHOOK_DELIVER);
