//! Lambda function for the `job-lease-reaper` job.

stackhouse_lambda::job!(JOB_LEASE_REAPER);
