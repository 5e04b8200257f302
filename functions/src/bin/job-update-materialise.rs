//! Lambda function for the `job-update-materialise` job.

stackhouse_lambda::job!(JOB_UPDATE_MATERIALISE);
