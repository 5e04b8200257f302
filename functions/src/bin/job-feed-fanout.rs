//! Lambda function for the `job-feed-fanout` job.

stackhouse_lambda::job!(JOB_FEED_FANOUT);
