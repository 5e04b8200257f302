//! Lambda function for the `job-artifact-gc` job.

stackhouse_lambda::job!(JOB_ARTIFACT_GC);
