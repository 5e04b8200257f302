//! Lambda function for the `job-history-retention` job.

stackhouse_lambda::job!(JOB_HISTORY_RETENTION);
